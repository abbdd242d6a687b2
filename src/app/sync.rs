//! `ocirepl sync CONFIG`: a validated config → one run of every job (or
//! `--job` ones) → a line per image and a summary, and an exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::cache::FileCache;
use super::progress::{self, Bars};
use super::{EXIT_FAILED, EXIT_OK, UsageError, cache_dir};
use crate::cli::{Output, SyncArgs};
use crate::copy::{Replicator, RunSettings};
use crate::credentials::Env;
use crate::progress::{Progress, Silent};
use crate::report::{Action, ImageReport};
use crate::store::Stores;
use crate::sync::{self, SyncSettings, job};

pub(super) async fn run(args: SyncArgs, quiet: bool) -> Result<ExitCode> {
    let mut config = job::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    if args.check {
        if !quiet {
            eprintln!(
                "{}: {} jobs, valid",
                args.config.display(),
                config.jobs.len()
            );
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    if let Some(unknown) = args
        .only
        .iter()
        .find(|n| !config.jobs.iter().any(|j| &j.name == *n))
    {
        return Err(UsageError(format!(
            "--job {unknown}: no such job in {}",
            args.config.display()
        ))
        .into());
    }
    for j in &mut config.jobs {
        j.options.timeout = args.timeout.map(Duration::from_secs);
    }
    let json = args.output == Output::Json;
    let bars = progress::wanted(args.progress, quiet, json).then(|| Arc::new(Bars::new(0)));
    let replicator = Replicator::new(RunSettings {
        jobs: usize::from(args.jobs),
        diff_id_cache: Arc::new(FileCache::open(
            cache_dir().map(|d| d.join("diff-ids.json")),
        )),
        progress: match &bars {
            Some(b) => b.clone() as Arc<dyn Progress>,
            None => Arc::new(Silent),
        },
        plan_only: args.plan,
    });
    let settings = SyncSettings {
        only: args.only.clone(),
        read_timeout: Some(Duration::from_secs(args.read_timeout.max(1))),
    };
    let stores = Stores::new(Env::from_process());
    let print = |line: &str| match &bars {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    let on_report = |r: &ImageReport| {
        if json {
            match serde_json::to_string(r) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("error: serialising a report: {e}"),
            }
        } else if shown(r, args.plan) && (!quiet || r.action == Action::Failed) {
            print(&r.human());
        }
    };
    let summary = sync::run(&config, &settings, &stores, &replicator, &on_report).await;
    if let Some(b) = &bars {
        b.finish();
    }
    if json {
        let line = serde_json::to_string(&serde_json::json!({ "summary": summary }))
            .context("serialising the summary")?;
        println!("{line}");
    } else if !quiet {
        print(&summary.human());
    }
    Ok(ExitCode::from(if summary.failed() > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }))
}

/// The lines a person wants: what changed or failed; with --plan, everything.
fn shown(r: &ImageReport, plan: bool) -> bool {
    plan || matches!(r.action, Action::Copied | Action::Failed)
        || (r.action == Action::Skipped
            && r.error.is_none()
            && r.reason.as_deref() != Some("immutable tag already in the target"))
}
