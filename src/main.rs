//! The `ocirepl` binary: parse arguments, set up logging, run, and map the
//! outcome to an exit code (0 ok, 1 failed, 2 usage). Nothing else.

use std::process::ExitCode;

use clap::Parser;
use ocirepl::app::{self, EXIT_FAILED, EXIT_USAGE, UsageError};
use ocirepl::cli::{Cli, LogFormat};

/// The variables ocirepl's flags read. CI templates export a missing
/// secret as an empty string: empty means "not set", never a usage error.
const FLAG_VARIABLES: [&str; 5] = [
    "OCIREPL_SRC_CREDS",
    "OCIREPL_DEST_CREDS",
    "OCIREPL_SRC_REGISTRY_TOKEN",
    "OCIREPL_DEST_REGISTRY_TOKEN",
    "OCIREPL_AUTHFILE",
];

fn main() -> ExitCode {
    for var in FLAG_VARIABLES {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            // SAFETY: no other thread exists yet; nothing reads the
            // environment concurrently.
            unsafe { std::env::remove_var(var) };
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help/--version and 2 for usage errors.
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(app::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<UsageError>() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    // Other crates stay at warn whatever the verbosity: the HTTP stack's own
    // debug lines print URLs unredacted (signed redirect targets, `_state`).
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "ocirepl=info,warn",
        (false, 2) => "ocirepl=debug,warn",
        _ => "ocirepl=trace,warn",
    };
    let filter = tracing_subscriber::EnvFilter::new(level);
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines go around progress bars instead of through them.
        .with_writer(|| ocirepl::app::progress::LogWriter)
        .with_target(false);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
