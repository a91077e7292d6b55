//! `callrecords`: parse the command line, start tracing, run the command.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = callrecords::cli::Cli::parse();
    callrecords::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(callrecords::cli::run(cli))
}
