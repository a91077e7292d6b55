//! `callrecords`: parse the command line, start tracing, run the command.
//!
//! A failed command prints one line, `error: ` and its causes, and exits 1: the user needs what
//! went wrong, not where in the code (a backtrace is for `RUST_LOG=debug` and panics).

use std::process::ExitCode;

use clap::Parser;

/// Allocating and freeing JSON values is 40 % of the generator's time under glibc's malloc and
/// a good part of a request's; jemalloc does it for less, with a peak RSS close to glibc's
/// (mimalloc was as fast and held three to four times the memory under concurrent reads). Its
/// options are compiled in: `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
