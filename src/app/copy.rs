//! `ocirepl copy`: flags → a plan (jobs and options) and settings (how to
//! reach each side) → one run of the replicator → reports and an exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::cache::FileCache;
use super::progress::{self, Bars};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, access, archive, cache_dir, parse_ref};
use crate::cli::{CopyArgs, FormatArg, ModeArg, OnUnverifiedArg, Output, VerifyArgs};
use crate::copy::{Replicator, RunSettings, Target, Task, target_tags};
use crate::credentials::Env;
use crate::manifest::referrers::is_attachment_tag;
use crate::plan::{CopyJob, CopyOptions, Format, Known, Limits, Mode, PlatformSelection};
use crate::platform::Platform;
use crate::progress::{Progress, Silent};
use crate::reference::ImageRef;
use crate::report::{Action, ImageReport};
use crate::store::{Access, Role, Store, Stores};
use crate::sync::trust::{Loader, Part, PolicySpec};
use crate::verify::{Gate, OnUnverified};

pub(super) async fn run(args: CopyArgs, quiet: bool) -> Result<ExitCode> {
    let source = parse_ref(&args.source, "SRC")?;
    // Usage mistakes (a key file that is not a key, too) are found before
    // any request.
    let options = options(&args)?;
    let (src_access, dst_access) = accesses(&args)?;
    let stores = Stores::new(Env::from_process()).packing(archive::pack_options(&args.archive)?);
    let source = match &source {
        ImageRef::Layout(l) if l.tag.is_none() && !args.all_tags => {
            the_one_image(&source, &stores, &src_access).await?
        }
        _ => source,
    };
    // A layout or archive DST without a NAME is named after the source.
    let targets = args
        .destinations
        .iter()
        .map(|d| parse_ref(d, "DST").map(|t| t.named_after(&source)))
        .collect::<Result<Vec<_>>>()?;
    // Usage mistakes are found before anything is opened or created.
    for target in &targets {
        refuse_writing_the_source(&source, target, args.all_tags)?;
        if args.all_tags {
            check_repositories(&source, target)?;
        }
    }
    refuse_repeated_targets(&targets)?;
    let single = match args.all_tags {
        true => None,
        false => Some(
            targets
                .iter()
                .map(|t| CopyJob::new(source.clone(), t.clone(), options.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| UsageError(e.to_string()))?,
        ),
    };
    let src = stores.open(&source, &src_access, Role::Source)?;
    let dsts = targets
        .iter()
        .map(|t| stores.open(t, &dst_access, Role::Target))
        .collect::<Result<Vec<_>, _>>()?;
    let tasks = match single {
        Some(jobs) => vec![Task {
            src,
            targets: jobs
                .into_iter()
                .zip(dsts)
                .map(|(job, dst)| Target { job, dst })
                .collect(),
        }],
        None => all_tags(&source, (&targets, &dsts), &options, &src).await?,
    };
    let json = args.output == Output::Json;
    let bars = progress::wanted(args.progress, quiet, json)
        .then(|| Arc::new(Bars::new(tasks.len() as u64)));
    let replicator = Replicator::new(RunSettings {
        jobs: usize::from(args.jobs),
        diff_id_cache: Arc::new(FileCache::open(
            cache_dir().map(|d| d.join("diff-ids.json")),
        )),
        progress: match &bars {
            Some(b) => b.clone() as Arc<dyn Progress>,
            None => Arc::new(Silent),
        },
        plan_only: false,
    });
    let reports = replicator.run_all(&tasks).await;
    if let Some(b) = &bars {
        b.finish();
    }
    let print = |line: &str| match &bars {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    let mut worst = ExitCode::from(EXIT_OK);
    for r in &reports {
        print_report(r, args.output, quiet, &print)?;
        if r.failed() {
            worst = exit_code(r);
        }
    }
    if args.all_tags && !quiet && !json {
        print(&summary(&reports));
    }
    if !archive::finish(&stores, quiet, &print) {
        worst = ExitCode::from(EXIT_FAILED);
    }
    Ok(worst)
}

/// A copy onto its own source is refused: at best it does nothing, and
/// with a platform filter or a format it would rewrite the source's tag.
/// Registries compare by where they are reached (`localhost:5000` is
/// `127.0.0.1:5000`), layouts by their directory.
fn refuse_writing_the_source(source: &ImageRef, target: &ImageRef, all_tags: bool) -> Result<()> {
    let same_place = match (source, target) {
        (ImageRef::Registry(s), ImageRef::Registry(t)) => s.same_repository(t),
        (ImageRef::Layout(s), ImageRef::Layout(t)) => {
            let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            let same_file = s.path == t.path
                || canonical(&s.path).is_some_and(|c| Some(c) == canonical(&t.path));
            let name = |r: &Option<crate::reference::Reference>| r.as_ref().map(|r| r.name());
            same_file && name(&s.repository) == name(&t.repository)
        }
        _ => false,
    };
    let src_tag = match source.digest() {
        Some(_) => None,
        None => Some(source.tag().unwrap_or(crate::plan::DEFAULT_TAG)),
    };
    let dst_tag = target.tag().or(src_tag);
    if same_place && (all_tags || (src_tag.is_some() && dst_tag == src_tag)) {
        return Err(UsageError(format!(
            "the target is the source: {source} and {target} reach the same repository"
        ))
        .into());
    }
    Ok(())
}

fn check_repositories(source: &ImageRef, target: &ImageRef) -> Result<()> {
    if source.tag().is_some()
        || source.digest().is_some()
        || target.tag().is_some()
        || target.digest().is_some()
    {
        return Err(
            UsageError("--all-tags takes repositories, without tag or digest".into()).into(),
        );
    }
    Ok(())
}

/// A layout or archive SRC without a NAME is the one image it holds, as
/// skopeo reads it; several are a usage error listing them.
async fn the_one_image(source: &ImageRef, stores: &Stores, access: &Access) -> Result<ImageRef> {
    let store = stores.open(source, access, Role::Source)?;
    let tags = store
        .tags()
        .await
        .with_context(|| format!("listing the images of {source}"))?;
    match tags.as_slice() {
        [one] => Ok(source.with_tag(one)),
        [] => Err(UsageError(format!("{source} holds no tagged image")).into()),
        many => Err(UsageError(format!(
            "{source} holds {} images ({}): name one, as {source}:NAME",
            many.len(),
            many.join(", ")
        ))
        .into()),
    }
}

/// Two DSTs naming one repository and tag would race for it.
fn refuse_repeated_targets(targets: &[ImageRef]) -> Result<()> {
    for (i, a) in targets.iter().enumerate() {
        for b in &targets[i + 1..] {
            let same = match (a, b) {
                (ImageRef::Registry(x), ImageRef::Registry(y)) => {
                    x.same_repository(y) && x.tag() == y.tag()
                }
                _ => a == b,
            };
            if same {
                return Err(UsageError(format!("DST {b} is given twice ({a})")).into());
            }
        }
    }
    Ok(())
}

/// `--all-tags`: every tag of SRC to the same tag in each DST.
async fn all_tags(
    source: &ImageRef,
    (targets, dsts): (&[ImageRef], &[Arc<dyn Store>]),
    options: &CopyOptions,
    src: &Arc<dyn Store>,
) -> Result<Vec<Task>> {
    let listings = futures::future::join_all(dsts.iter().map(|d| target_tags(d.as_ref())));
    let (tags, present) = futures::join!(src.tags(), listings);
    let tags = tags.with_context(|| format!("listing the tags of {source}"))?;
    // Verifying, signatures and attestations are not images to judge:
    // they enter only as referrers of an image that passed.
    let verifying = options.verify.is_some();
    tags.iter()
        .filter(|t| !(verifying && is_attachment_tag(t)))
        .map(|t| {
            let mut each = Vec::new();
            for ((target, dst), present) in targets.iter().zip(dsts).zip(&present) {
                let context = Known {
                    target_lacks_tag: present.as_ref().is_some_and(|p| !p.contains(t)),
                    ..Known::default()
                };
                let job = CopyJob::with_context(
                    source.with_tag(t),
                    target.with_tag(t),
                    options.clone(),
                    context,
                )
                .map_err(|e| UsageError(e.to_string()))?;
                each.push(Target {
                    job,
                    dst: dst.clone(),
                });
            }
            Ok(Task {
                src: src.clone(),
                targets: each,
            })
        })
        .collect()
}

fn summary(reports: &[ImageReport]) -> String {
    let count = |a: Action| reports.iter().filter(|r| r.action == a).count();
    format!(
        "{} tags: {} copied, {} up to date, {} failed{}",
        reports.len(),
        count(Action::Copied),
        count(Action::UpToDate),
        reports.iter().filter(|r| r.failed()).count(),
        match count(Action::Unverified) {
            0 => String::new(),
            n => format!(", {n} unverified (not copied)"),
        }
    )
}

/// Both ends of a copy, as the flags describe them.
fn accesses(args: &CopyArgs) -> Result<(Access, Access)> {
    let mut src = access::source(&args.src, args.authfile.as_ref())?;
    let mut dst = access::dest(&args.dest, args.authfile.as_ref())?;
    dst.upload_mode = access::upload_mode(args.upload_mode);
    dst.chunk_size = args.chunk_size;
    let read_timeout = Some(Duration::from_secs(args.read_timeout.max(1)));
    for side in [&mut src, &mut dst] {
        side.prefer_index = args.mode != ModeArg::Verbatim;
        side.max_manifest_size = args.max_manifest_size;
        side.read_timeout = read_timeout;
    }
    Ok((src, dst))
}

/// JSON on stdout for machines; a line on stderr for people (failures always).
pub(super) fn print_report(
    report: &ImageReport,
    output: Output,
    quiet: bool,
    print: &dyn Fn(&str),
) -> Result<()> {
    if output == Output::Json {
        let json = serde_json::to_string(report).context("serialising the report")?;
        println!("{json}");
    }
    if report.failed() || (output == Output::Human && !quiet) {
        print(&report.human());
    }
    Ok(())
}

pub(super) fn exit_code(report: &ImageReport) -> ExitCode {
    ExitCode::from(match (report.failed(), report.usage_error) {
        (true, true) => EXIT_USAGE,
        (true, false) => EXIT_FAILED,
        (false, _) => EXIT_OK,
    })
}

/// `--verify-key`, `--verify-issuer`/`--verify-subject`: the policies
/// (either passing is enough), their files read now.
fn verify_gate(args: &VerifyArgs) -> Result<Option<Gate>> {
    let mut policies = Vec::new();
    if !args.keys.is_empty() {
        policies.push(PolicySpec {
            keys: args.keys.clone(),
            trusted_root: args.trusted_root.clone(),
            tlog: args.tlog,
            ..PolicySpec::default()
        });
    }
    if let (Some(issuer), Some(subject)) = (&args.issuer, &args.subject) {
        policies.push(PolicySpec {
            keyless: Some((issuer.clone(), subject.clone())),
            trusted_root: args.trusted_root.clone(),
            sct: !args.insecure_ignore_sct,
            ..PolicySpec::default()
        });
    }
    let asked = args.verify_children
        || args.trusted_root.is_some()
        || args.on_unverified != OnUnverifiedArg::Fail;
    if policies.is_empty() && asked {
        return Err(UsageError(
            "--trusted-root, --verify-children and --on-unverified need --verify-key or --verify-issuer/--verify-subject".into(),
        )
        .into());
    }
    let on = match args.on_unverified {
        OnUnverifiedArg::Fail => OnUnverified::Fail,
        OnUnverifiedArg::Skip => OnUnverified::Skip,
    };
    Loader::default()
        .requirement(&policies, on, args.verify_children)
        .map_err(|errors| {
            let lines: Vec<String> = errors
                .into_iter()
                .map(|(_, part, why)| match part {
                    Part::Issuer => format!("--verify-issuer: {why}"),
                    Part::Subject => format!("--verify-subject: {why}"),
                    Part::Key(_) => format!("--verify-key {why}"),
                    Part::TrustedRoot => format!("--trusted-root {why}"),
                    Part::Policy => why,
                })
                .collect();
            UsageError(lines.join("\n")).into()
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
    let options = CopyOptions {
        platforms: match (platforms.is_empty(), args.unwrap) {
            (true, _) => PlatformSelection::All,
            (false, false) => PlatformSelection::Only(platforms),
            (false, true) => PlatformSelection::Unwrap(platforms),
        },
        mode,
        format: match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::V2s2 => Format::V2s2,
            FormatArg::Oci => Format::Oci,
        },
        include_foreign: args.include_foreign,
        limits: Limits {
            max_manifest_size: args.max_manifest_size,
            max_uncompressed_layer: args.max_uncompressed_layer,
            max_index_children: args.max_index_children,
            max_image_manifest_bytes: args.max_image_manifest_bytes,
        },
        timeout: args.timeout.map(Duration::from_secs),
        pull_reserve: None,
        referrers: args.referrers.then(|| args.referrers_types.clone()),
        verify: verify_gate(&args.verify)?,
        media_types: None,
        backup: None,
        repair: false,
    };
    options.validate().map_err(|e| UsageError(e.to_string()))?;
    Ok(options)
}
