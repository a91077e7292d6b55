//! `callrecords`: parse the command line, start tracing, run the command.
//!
//! A failed command prints one line, `error: ` and its causes, and exits 1: the user needs what
//! went wrong, not where in the code (a backtrace is for `RUST_LOG=debug` and panics).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = callrecords::cli::Cli::parse();
    callrecords::telemetry::init(cli.log_format);
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(callrecords::cli::run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::debug!(?error, "the command failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
