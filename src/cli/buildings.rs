//! `callrecords buildings import`: a tenant's CQD building file into the store, as
//! `PUT /ingest/buildings` takes it.

use anyhow::Context;

use super::DbArgs;
use crate::clock::Clock as _;
use crate::quality::buildings;
use crate::store::{self, StoredBuildingFile, TenantId};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum BuildingsCommand {
    /// Make a building file (headerless CSV or TSV in CQD's column order) the tenant's active one.
    Import(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// The building file.
    pub(crate) file: std::path::PathBuf,
    /// The tenant (a GUID) whose file it is.
    #[arg(long, default_value = TenantId::DEFAULT)]
    pub(crate) tenant: String,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

pub(crate) async fn run(command: BuildingsCommand) -> anyhow::Result<String> {
    let BuildingsCommand::Import(args) = command;
    let tenant = TenantId::parse(&args.tenant).with_context(|| format!("--tenant '{}' is not a GUID", args.tenant))?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let parsed = buildings::parse(&text).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|problem| format!("  line {}: {}", problem.line, problem.problem))
            .collect();
        anyhow::anyhow!(
            "{} was not taken ({} bad lines); the active file is unchanged:\n{}",
            args.file.display(),
            problems.len(),
            lines.join("\n")
        )
    })?;
    let store = store::open(&args.db.db_url).await?;
    let file = StoredBuildingFile {
        uploaded: crate::clock::SystemClock.timestamp(),
        subnets: parsed.len() as i64,
        body: text,
    };
    store.add_building_file(&tenant, &file).await?;
    Ok(format!(
        "{} subnets of {} are tenant {}'s building data now",
        file.subnets,
        args.file.display(),
        tenant.as_str()
    ))
}
