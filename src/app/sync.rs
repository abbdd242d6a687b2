//! `ocirepl sync CONFIG`: a validated config → one run of every job (or
//! `--job` ones, or this shard's share) → a line per image and a summary,
//! metrics and state, and an exit code; or, with `--daemon`, the scheduler.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::cache::FileCache;
use super::progress::{self, Bars};
use super::{EXIT_FAILED, EXIT_OK, UsageError, archive, cache_dir};
use crate::cli::{Output, SyncArgs};
use crate::copy::{Replicator, RunSettings};
use crate::credentials::Env;
use crate::progress::{Progress, Silent};
use crate::report::{Action, ImageReport};
use crate::store::Stores;
use crate::sync::airgap::{Archive, Swap};
use crate::sync::daemon::{Health, Shared};
use crate::sync::job::{self, Config};
use crate::sync::metrics::Metrics;
use crate::sync::shard::Shard;
use crate::sync::state::State;
use crate::sync::{self, SyncSettings};

pub(super) async fn run(args: SyncArgs, quiet: bool, json_logs: bool) -> Result<ExitCode> {
    if args.status {
        return status(&args);
    }
    let Some(path) = args.config.clone() else {
        return Err(UsageError("a CONFIG file is needed".into()).into());
    };
    let mut config = job::load(&path).map_err(|e| match super::config::hint(&path) {
        Some(hint) => UsageError(format!("{hint}\n{e}")),
        None => UsageError(e.to_string()),
    })?;
    if args.check {
        if !quiet {
            let n = config.jobs.len();
            eprintln!("{}: {n} jobs, valid", path.display());
            let unscheduled = config.unscheduled();
            if !unscheduled.is_empty() {
                let names = unscheduled.join(", ");
                eprintln!("  not for --daemon: no schedule or every for {names}");
            }
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    if let Some(unknown) = args
        .only
        .iter()
        .find(|n| !config.jobs.iter().any(|j| &j.name == *n))
    {
        let file = path.display();
        return Err(UsageError(format!("--job {unknown}: no such job in {file}")).into());
    }
    for j in &mut config.jobs {
        j.options.timeout = args.timeout.map(Duration::from_secs);
    }
    let settings = SyncSettings {
        only: args.only.clone(),
        read_timeout: Some(Duration::from_secs(args.read_timeout.max(1))),
        shard: shard(&args)?,
        swap: swap(&args)?,
        trigger: None,
    };
    let state = State::open(args.state.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    let json = args.output == Output::Json;
    if args.daemon {
        let run = replicator_settings(&args, None);
        let output = Reports { json, json_logs };
        return daemon(&args, (config, path), run, settings, state, output).await;
    }
    let bars = progress::wanted(args.progress, quiet, json).then(|| Arc::new(Bars::new(0)));
    let replicator = Replicator::new(replicator_settings(&args, bars.clone()));
    let stores = Stores::new(Env::from_process()).packing(archive::pack_options(&args.archive)?);
    let print = |line: &str| match &bars {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    let metrics = Metrics::new();
    let on_report = |r: &ImageReport| {
        metrics.image(r);
        if json {
            print_json(r);
        } else if shown(r, args.plan) && (!quiet || r.failed()) {
            print(&r.human());
        }
    };
    let summary = sync::run(&config, &settings, &stores, &replicator, &state, &on_report).await;
    state.save();
    if let Some(b) = &bars {
        b.finish();
    }
    let packed = args.plan || archive::finish(&stores, quiet, &print);
    if let Some(path) = &args.metrics_file {
        let ok = summary.failed() == 0;
        metrics.job_run("all", summary.duration_ms as f64 / 1000.0, ok);
        write_metrics(path, &metrics.encode(&stores))?;
    }
    if json {
        let line = serde_json::to_string(&serde_json::json!({ "summary": summary }))
            .context("serialising the summary")?;
        println!("{line}");
    } else if !quiet {
        print(&summary.human());
    }
    let failed = summary.failed() > 0 || !packed;
    Ok(ExitCode::from(if failed { EXIT_FAILED } else { EXIT_OK }))
}

/// `--to-archive` or `--from-archive`.
fn swap(args: &SyncArgs) -> Result<Option<Swap>> {
    let parse = |text: &str, flag: &str| {
        Archive::parse(text).map_err(|e| anyhow::Error::from(UsageError(format!("{flag}: {e}"))))
    };
    Ok(match (&args.to_archive, &args.from_archive) {
        (Some(to), _) => Some(Swap::ToArchive(parse(to, "--to-archive")?)),
        (None, Some(from)) => {
            let archive = parse(from, "--from-archive")?;
            if !archive.path.exists() {
                return Err(UsageError(format!(
                    "--from-archive: {} does not exist",
                    archive.path.display()
                ))
                .into());
            }
            Some(Swap::FromArchive(archive))
        }
        (None, None) => None,
    })
}

fn replicator_settings(args: &SyncArgs, bars: Option<Arc<Bars>>) -> RunSettings {
    RunSettings {
        jobs: usize::from(args.jobs),
        diff_id_cache: Arc::new(FileCache::open(
            cache_dir().map(|d| d.join("diff-ids.json")),
        )),
        progress: match bars {
            Some(b) => b as Arc<dyn Progress>,
            None => Arc::new(Silent),
        },
        plan_only: args.plan,
    }
}

/// `--shard I/N`, or `--shards N` with the index from JOB_COMPLETION_INDEX.
fn shard(args: &SyncArgs) -> Result<Option<Shard>> {
    let parsed = match (&args.shard, args.shards) {
        (Some(s), _) => Shard::parse(s).map(Some),
        (None, Some(n)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").ok();
            Shard::from_completion_index(index.as_deref(), n).map(Some)
        }
        (None, None) => Ok(None),
    };
    parsed.map_err(|e| UsageError(e).into())
}

/// `--daemon`: the scheduler until SIGTERM or SIGINT.
async fn daemon(
    args: &SyncArgs,
    (config, path): (Config, std::path::PathBuf),
    run: RunSettings,
    sync: SyncSettings,
    state: State,
    output: Reports,
) -> Result<ExitCode> {
    let shared = Arc::new(Shared {
        stores: Stores::new(Env::from_process()),
        metrics: Metrics::new(),
        state,
        health: Health::default(),
        run,
        sync,
        on_report: Box::new(move |r: &ImageReport| {
            if output.json {
                print_json(r);
            } else if shown(r, false) && output.json_logs {
                // With JSON logs, a report is a log line like the others.
                let line = serde_json::json!({
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "level": if r.failed() { "ERROR" } else { "INFO" },
                    "message": r.human(),
                    "report": r,
                });
                eprintln!("{line}");
            } else if shown(r, false) {
                eprintln!("{}", r.human());
            }
        }),
        next_runs: Default::default(),
    });
    let grace = Duration::from_secs(args.grace);
    let addr = args.listen.clone();
    super::daemon::run(config, path, shared, addr, grace).await?;
    Ok(ExitCode::from(EXIT_OK))
}

/// `--status`: each job's last run, as the state file records it.
fn status(args: &SyncArgs) -> Result<ExitCode> {
    let Some(path) = &args.state else {
        return Err(UsageError("--status needs --state FILE".into()).into());
    };
    let runs = State::read_runs(path)
        .map_err(|e| UsageError(format!("--state {}: {e}", path.display())))?;
    if args.output == Output::Json {
        println!("{}", serde_json::json!({ "jobs": runs }));
        return Ok(ExitCode::from(EXIT_OK));
    }
    if runs.is_empty() {
        println!("{}: no run recorded yet", path.display());
    }
    for (job, r) in &runs {
        let images: Vec<String> = r.images.iter().map(|(a, n)| format!("{n} {a}")).collect();
        println!(
            "{job}: {} at {} ({}; started {}): {}",
            r.result,
            r.ended,
            r.cause,
            r.started,
            images.join(", ")
        );
        if let Some(e) = &r.last_error {
            println!("  first error: {e}");
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// Where a daemon's reports go: JSON on stdout (`--output json`), or a
/// line on stderr, as JSON with `--log-format json`.
#[derive(Clone, Copy)]
struct Reports {
    json: bool,
    json_logs: bool,
}

fn print_json(r: &ImageReport) {
    match serde_json::to_string(r) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("error: serialising a report: {e}"),
    }
}

/// The metrics text, written atomically (the textfile collector reads
/// whole files).
fn write_metrics(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let what = || format!("writing {}", path.display());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(what)?;
    tmp.write_all(text.as_bytes()).with_context(what)?;
    tmp.persist(path).with_context(what)?;
    Ok(())
}

/// The lines a person wants: what changed, failed or was held back; with
/// --plan, everything.
fn shown(r: &ImageReport, plan: bool) -> bool {
    plan || r.failed()
        || matches!(
            r.action,
            Action::Copied | Action::Pruned | Action::Unverified
        )
        || (r.action == Action::Skipped
            && r.reason.as_deref() != Some("immutable tag already in the target"))
}
