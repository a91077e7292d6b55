//! A fresh database per test on either backend: a SQLite file in a temp dir, or a PostgreSQL
//! database created from a migrated template (creating from a template costs a file copy; running
//! the migrations per test would dominate the suite on two cores) and dropped afterwards.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server the PostgreSQL tests use; CI makes sure it runs.
fn admin_url() -> String {
    std::env::var("CALLRECORDS_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// The template's name changes whenever a migration does, so a stale template is never used.
fn template_name() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations/postgres exists")
        .map(|entry| entry.expect("readable").path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(std::fs::read(&file).expect("readable migration"));
    }
    let digest = hash.finalize();
    format!(
        "callrecords_tpl_{}",
        digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "the PostgreSQL server the tests use ({}) does not answer: {error}; start one (see .ci/run) or set CALLRECORDS_TEST_PG",
                callrecords::app::redact_url(&admin_url())
            )
        })
}

/// Creates and migrates the template once; other test processes wait on an advisory lock.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin().await;
            conn.execute("SELECT pg_advisory_lock(7474201)").await.expect("lock");
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .expect("query");
            if !exists {
                let building = format!("{name}_building");
                conn.execute(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)").as_str())
                    .await
                    .expect("drop");
                conn.execute(format!("CREATE DATABASE {building}").as_str())
                    .await
                    .expect("create template");
                let store = callrecords::store::open(&database_url(&building))
                    .await
                    .expect("template migrates");
                drop(store);
                terminate_connections(&mut conn, &building).await;
                conn.execute(format!("ALTER DATABASE {building} RENAME TO {name}").as_str())
                    .await
                    .expect("rename");
            }
            conn.execute("SELECT pg_advisory_unlock(7474201)")
                .await
                .expect("unlock");
            name
        })
        .await
}

async fn terminate_connections(conn: &mut PgConnection, database: &str) {
    for _ in 0..50 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(database)
        .execute(&mut *conn)
        .await
        .expect("terminate");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(database)
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<TempDir>,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                Self {
                    url: format!("sqlite://{}", dir.path().join("test.db").display()),
                    _dir: Some(dir),
                    postgres_name: None,
                }
            }
            Backend::Postgres => {
                let template = template().await;
                let name = format!("callrecords_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = admin().await;
                let mut attempt = 0;
                loop {
                    let created = conn
                        .execute(format!("CREATE DATABASE {name} TEMPLATE {template}").as_str())
                        .await;
                    match created {
                        Ok(_) => break,
                        // Another process may be creating from the template at this instant.
                        Err(error) if attempt < 50 && error.to_string().contains("being accessed") => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(error) => panic!("creating {name}: {error}"),
                    }
                }
                Self {
                    url: database_url(&name),
                    _dir: None,
                    postgres_name: Some(name),
                }
            }
        }
    }
}

impl TestDatabase {
    /// A database holding the store that the previous release wrote (`tests/fixtures`): a copy
    /// of its SQLite file, or its PostgreSQL dump restored into a new, empty database.
    pub async fn previous_release(backend: Backend) -> Self {
        Self::release_fixture(backend, "v0").await
    }

    /// A store as a release left it: `tests/fixtures/store-{release}-*` (see its README).
    pub async fn release_fixture(backend: Backend, release: &str) -> Self {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        match backend {
            Backend::Sqlite => {
                let database = Self::new(Backend::Sqlite).await;
                let path = database.url.strip_prefix("sqlite://").expect("a SQLite URL");
                let file =
                    std::fs::File::open(format!("{fixtures}/store-{release}-sqlite.db.zst")).expect("the fixture");
                let mut output = std::fs::File::create(path).expect("the copy");
                zstd::stream::copy_decode(file, &mut output).expect("the fixture decompresses");
                database
            }
            Backend::Postgres => {
                let name = format!("callrecords_test_{}", uuid::Uuid::new_v4().simple());
                admin()
                    .await
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create database");
                let database = Self {
                    url: database_url(&name),
                    _dir: None,
                    postgres_name: Some(name),
                };
                let file =
                    std::fs::File::open(format!("{fixtures}/store-{release}-postgres.sql.zst")).expect("the fixture");
                let dump = zstd::stream::decode_all(file).expect("the fixture decompresses");
                let dump = String::from_utf8(dump).expect("the dump is text");
                let mut connection = PgConnection::connect(&database.url).await.expect("connect");
                sqlx::raw_sql(&dump)
                    .execute(&mut connection)
                    .await
                    .expect("the dump restores");
                database
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop cannot await; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs a test body once per backend: `both!(name)` makes `name::sqlite` and `name::postgres`
/// from `async fn name(backend: Backend)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}
