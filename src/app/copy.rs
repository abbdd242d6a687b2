//! `ocirepl copy`: two references → a job and options → the Replicator →
//! a report and an exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Side, UsageError, cache_dir, parse_ref};
use crate::cli::{CopyArgs, FormatArg, ModeArg, Output};
use crate::copy::{CopyOptions, Replicator};
use crate::plan::{CopyJob, Format, Mode};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::report::{Action, ImageReport};

pub(super) async fn run(args: CopyArgs, quiet: bool) -> Result<ExitCode> {
    let source = parse_ref(&args.source, "SRC")?;
    let target = parse_ref(&args.destination, "DST")?;
    if args.all_tags {
        return all_tags(args, source, target, quiet).await;
    }
    let job = CopyJob::new(source, target).map_err(|e| UsageError(e.to_string()))?;
    let options = options(&args)?;
    let (src_side, dst_side) = sides(&args)?;
    let src = src_side.open(&job.source)?;
    let dst = dst_side.open(&job.target)?;
    let report = Replicator::new(src.as_ref(), dst.as_ref(), options)
        .run(&job)
        .await;
    print_report(&report, args.output, quiet)?;
    Ok(exit_code(&report))
}

/// `--all-tags`: every tag of SRC to the same tag in DST, concurrently.
async fn all_tags(
    args: CopyArgs,
    source: ImageRef,
    target: ImageRef,
    quiet: bool,
) -> Result<ExitCode> {
    if source.tag().is_some()
        || source.digest().is_some()
        || target.tag().is_some()
        || target.digest().is_some()
    {
        return Err(
            UsageError("--all-tags takes repositories, without tag or digest".into()).into(),
        );
    }
    let options = options(&args)?;
    let (src_side, dst_side) = sides(&args)?;
    let src = src_side.open(&source)?;
    let dst = dst_side.open(&target)?;
    let repo = match &source {
        ImageRef::Registry(r) => r.repository().to_string(),
        ImageRef::Layout(_) => String::new(),
    };
    let tags = src
        .tags(&repo)
        .await
        .with_context(|| format!("listing the tags of {source}"))?;
    let jobs = tags
        .iter()
        .map(|t| CopyJob::new(with_tag(&source, t), with_tag(&target, t)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UsageError(e.to_string()))?;
    let reports = Replicator::new(src.as_ref(), dst.as_ref(), options)
        .run_all(&jobs)
        .await;
    let mut worst = ExitCode::from(EXIT_OK);
    let (mut copied, mut current, mut failed) = (0, 0, 0);
    for r in &reports {
        print_report(r, args.output, quiet)?;
        match r.action {
            Action::Copied => copied += 1,
            Action::UpToDate => current += 1,
            Action::Failed => {
                failed += 1;
                worst = exit_code(r);
            }
        }
    }
    if !quiet && args.output == Output::Human {
        eprintln!(
            "{} tags: {copied} copied, {current} up to date, {failed} failed",
            reports.len()
        );
    }
    Ok(worst)
}

fn with_tag(r: &ImageRef, tag: &str) -> ImageRef {
    match r {
        ImageRef::Registry(reference) => {
            ImageRef::Registry(reference.with(Some(tag.to_string()), None))
        }
        ImageRef::Layout(l) => ImageRef::Layout(crate::reference::LayoutRef {
            path: l.path.clone(),
            tag: Some(tag.to_string()),
        }),
    }
}

/// Both ends of a copy, as the flags describe them.
fn sides(args: &CopyArgs) -> Result<(Side, Side)> {
    let mut src = Side::source(&args.src, args.authfile.as_ref())?;
    let mut dst = Side::dest(&args.dest, args.authfile.as_ref())?
        .with_upload(args.upload_mode, args.chunk_size);
    let read_timeout = Some(std::time::Duration::from_secs(args.read_timeout.max(1)));
    for side in [&mut src, &mut dst] {
        side.prefer_index = args.mode != ModeArg::Verbatim;
        side.max_manifest_size = args.max_manifest_size;
        side.read_timeout = read_timeout;
    }
    Ok((src, dst))
}

/// JSON on stdout for machines; a line on stderr for people (failures always).
pub(super) fn print_report(report: &ImageReport, output: Output, quiet: bool) -> Result<()> {
    if output == Output::Json {
        let json = serde_json::to_string(report).context("serialising the report")?;
        println!("{json}");
    }
    if report.action == Action::Failed || (output == Output::Human && !quiet) {
        eprintln!("{}", report.human());
    }
    Ok(())
}

pub(super) fn exit_code(report: &ImageReport) -> ExitCode {
    ExitCode::from(match (report.action, report.usage_error) {
        (Action::Failed, true) => EXIT_USAGE,
        (Action::Failed, false) => EXIT_FAILED,
        _ => EXIT_OK,
    })
}

fn options(args: &CopyArgs) -> Result<CopyOptions> {
    let platforms = args
        .platform
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| UsageError(format!("--platform: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mode = match args.mode {
        ModeArg::Verbatim => Mode::Verbatim,
        ModeArg::PreferIndex => Mode::PreferIndex,
        ModeArg::NormaliseIndex => Mode::NormaliseIndex,
    };
    if args.unwrap && mode == Mode::NormaliseIndex {
        return Err(
            UsageError("--unwrap and --mode normalise-index contradict each other".into()).into(),
        );
    }
    Ok(CopyOptions {
        jobs: usize::from(args.jobs),
        platforms,
        unwrap: args.unwrap,
        mode,
        format: match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::V2s2 => Format::V2s2,
            FormatArg::Oci => Format::Oci,
        },
        include_foreign: args.include_foreign,
        max_uncompressed: args.max_uncompressed_layer,
        diff_id_cache: cache_dir().map(|d| d.join("diff-ids.json")),
        max_manifest_size: args.max_manifest_size,
        timeout: args.timeout.map(std::time::Duration::from_secs),
    })
}
