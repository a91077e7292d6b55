//! `callrecords-bench`: what `callrecords bench` runs. Prints the report on stdout, progress on
//! stderr; a failed run prints one `error: ` line and exits 1, as `callrecords` does.

use std::io::Write as _;
use std::process::ExitCode;

use callrecords_bench::{Baseline, Cli};
use clap::Parser as _;

/// The allocator `callrecords` uses, so the stores this process builds with the generator build
/// as fast as `callrecords generate` runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    callrecords::telemetry::init(callrecords::telemetry::LogFormat::default());
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.baseline {
                    Some(Baseline::Baseline(args)) => callrecords_bench::serve_baseline(args).await,
                    None => {
                        let report = callrecords_bench::run(cli.args).await?;
                        std::io::stdout().lock().write_all(report.as_bytes())?;
                        Ok(())
                    }
                }
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
