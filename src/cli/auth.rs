//! `callrecords token`, `callrecords apps add` and `callrecords keys rotate`: the local issuer's
//! administration, straight on the store (no server needed).

use anyhow::Context;

use super::DbArgs;
use crate::auth::{local, ROLES};
use crate::store::{self, TenantId};

#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {
    /// The tenant (a GUID) the token acts for.
    #[arg(long, default_value = TenantId::DEFAULT)]
    pub(crate) tenant: String,
    /// Application roles, comma-separated: CallRecords.Read.All, CallRecord-PstnCalls.Read.All, CallRecords.Ingest.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) roles: Vec<String>,
    /// The calling application's id (`azp`).
    #[arg(long, default_value = "callrecords-cli")]
    pub(crate) app_id: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = local::TOKEN_LIFETIME_SECS)]
    pub(crate) lifetime_secs: i64,
    /// The audience the server expects (`serve --audience`).
    #[arg(long, default_value = local::DEFAULT_AUDIENCE)]
    pub(crate) audience: String,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AppsCommand {
    /// Register an application for the client-credentials grant; prints its id and secret once.
    Add(AppsAddArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct AppsAddArgs {
    /// The tenant (a GUID) whose data the application reads and writes; its tokens carry it as
    /// `tid`.
    #[arg(long)]
    pub(crate) tenant: String,
    /// A name to tell the application by (kept with it, not checked for uniqueness).
    #[arg(long)]
    pub(crate) name: String,
    /// The application roles its tokens carry, comma-separated: CallRecords.Read.All,
    /// CallRecord-PstnCalls.Read.All, CallRecords.Ingest.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) roles: Vec<String>,
    /// A certificate (PEM, RSA) whose private key may sign client assertions for the app, as
    /// Entra ID's certificate credentials do, besides the secret.
    #[arg(long)]
    pub(crate) certificate: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Make a new signing key current; the old ones keep verifying for an hour and five minutes.
    Rotate(DbArgs),
}

fn tenant(text: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(text).with_context(|| format!("--tenant '{text}' is not a GUID"))
}

fn check_roles(roles: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = roles.iter().find(|role| !ROLES.contains(&role.as_str())) {
        anyhow::bail!("'{unknown}' is not a role; expected one of: {}", ROLES.join(", "));
    }
    Ok(())
}

/// Prints a token signed by the store's current key.
pub(crate) async fn token(args: TokenArgs) -> anyhow::Result<String> {
    check_roles(&args.roles)?;
    let store = store::open(&args.db.db_url).await?;
    local::ensure_signing_key(store.as_ref()).await?;
    let request = local::TokenRequest {
        tenant: tenant(&args.tenant)?,
        app_id: args.app_id,
        roles: args.roles,
        audience: args.audience,
        lifetime_secs: args.lifetime_secs,
    };
    local::issue_token(store.as_ref(), &request).await
}

pub(crate) async fn apps(command: AppsCommand) -> anyhow::Result<String> {
    match command {
        AppsCommand::Add(args) => {
            check_roles(&args.roles)?;
            let store = store::open(&args.db.db_url).await?;
            let tenant = tenant(&args.tenant)?;
            let certificate = match &args.certificate {
                Some(path) => {
                    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    Some(local::AppCertificate::from_pem(&pem).with_context(|| format!("{}", path.display()))?)
                }
                None => None,
            };
            let app = local::add_app(store.as_ref(), &tenant, &args.name, &args.roles).await?;
            let mut printed = format!(
                "tenant        {}\nclient_id     {}\nclient_secret {}\ntoken URL     http://HOST:PORT/{}/oauth2/v2.0/token (scope {}/.default)",
                tenant.as_str(),
                app.client_id,
                app.client_secret,
                tenant.as_str(),
                local::DEFAULT_AUDIENCE
            );
            if let Some(certificate) = certificate {
                local::add_app_certificate(store.as_ref(), &tenant, &app.client_id, &certificate).await?;
                printed.push_str(&format!("\ncertificate   x5t#S256 {}", certificate.thumbprint));
            }
            Ok(printed)
        }
    }
}

pub(crate) async fn keys(command: KeysCommand) -> anyhow::Result<String> {
    match command {
        KeysCommand::Rotate(db) => {
            let store = store::open(&db.db_url).await?;
            let kid = local::rotate_signing_key(store.as_ref()).await?;
            Ok(format!("new current signing key: {kid}"))
        }
    }
}
