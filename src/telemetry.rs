//! The tracing subscriber: `RUST_LOG` overrides a default of `info` for our crate and `warn`
//! for dependencies. Logs go to stderr, so stdout stays clean for `generate`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,callrecords=info,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
