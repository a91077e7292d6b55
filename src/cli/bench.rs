//! `callrecords bench`: runs `callrecords-bench`, the benchmark's own binary (the `bench` crate of
//! this workspace), with the arguments given. The benchmark stays out of the product binary; it
//! measures this binary as a child server, so it is told where this binary is.

use std::ffi::OsString;

use anyhow::Context as _;

/// Where `callrecords-bench` finds the `callrecords` binary it measures.
pub const BENCH_SERVER_ENV: &str = "CALLRECORDS_BENCH_SERVER";

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchArgs {
    /// The benchmark's arguments: `callrecords bench --help` lists them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Replaces this process with the benchmark (so signals reach it directly), or fails before
/// anything ran.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let server = std::env::current_exe().context("finding the callrecords executable")?;
    let bench = server.with_file_name(format!("callrecords-bench{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        bench.is_file(),
        "the benchmark is not built: {} is missing; build it with `cargo build --locked -p callrecords-bench` \
         (the README's test command builds it too)",
        bench.display()
    );
    let mut command = std::process::Command::new(&bench);
    command.args(&args.args).env(BENCH_SERVER_ENV, &server);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        Err(error).with_context(|| format!("starting {}", bench.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("starting {}", bench.display()))?;
        std::process::exit(status.code().unwrap_or(1))
    }
}
