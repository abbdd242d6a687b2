//! `ocirepl index create`: single-platform images → one multi-arch index,
//! children copied into the target repository first (by digest, no tag),
//! the index pushed last with annotations on it (seed 003).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::copy::print_report;
use super::{EXIT_OK, UsageError, access, parse_ref};
use crate::cli::{IndexCreateArgs, Output};
use crate::copy::shape::image_platform;
use crate::copy::{Replicator, RunSettings, push_manifest};
use crate::credentials::Env;
use crate::manifest::index::assemble;
use crate::media::Kind;
use crate::plan::{CopyJob, CopyOptions, DEFAULT_TAG};
use crate::reference::{ImageRef, ManifestRef};
use crate::report::Action;
use crate::store::{Role, Stores};

pub(super) async fn create(args: IndexCreateArgs, quiet: bool) -> Result<ExitCode> {
    let target = parse_ref(&args.destination, "DST")?;
    let annotations = args
        .annotations
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(UsageError(format!(
                "--annotation {a:?}: expected KEY=VALUE"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tag = match &target {
        ImageRef::Registry(r) if r.digest().is_none() => r.tag().unwrap_or(DEFAULT_TAG).to_string(),
        ImageRef::Layout(l) => l.tag.clone().unwrap_or(DEFAULT_TAG.into()),
        ImageRef::Registry(_) => bail!(UsageError(
            "DST: an index is pushed under a tag, not a digest".into()
        )),
    };
    let dst_access = access::dest(&args.dest, args.authfile.as_ref())?;
    let src_access = access::source(&args.src, args.authfile.as_ref())?;
    let stores = Stores::new(Env::from_process());
    let dst = stores.open(&target, &dst_access, Role::Target)?;
    let replicator = Replicator::new(RunSettings::default());

    let mut entries = Vec::new();
    for from in &args.from {
        let source = parse_ref(from, "--from")?;
        let src = stores.open(&source, &src_access, Role::Source)?;
        let job = CopyJob::new(source.clone(), target.clone(), CopyOptions::default())
            .map_err(|e| UsageError(e.to_string()))?;
        // Children go in by digest: only the index moves a tag.
        let job = CopyJob {
            dst_tag: None,
            ..job
        };
        let image = src
            .manifest_get(&job.src)
            .await
            .with_context(|| format!("reading {source}"))?;
        if image.media_type.kind() != Kind::Image {
            bail!(UsageError(format!(
                "--from {source} is a {}, not a single-platform image",
                image.media_type
            )));
        }
        let platform = image_platform(src.as_ref(), &image)
            .await
            .with_context(|| format!("reading the platform of {source}"))?;
        let job = CopyJob {
            src: ManifestRef::Digest(image.digest.clone()),
            ..job
        };
        let report = replicator.run(&job, src.as_ref(), dst.as_ref()).await;
        if report.action == Action::Failed {
            print_report(&report, Output::Human, quiet, &|l| eprintln!("{l}"))?;
            bail!("copying {source} into {target} failed");
        }
        entries.push((image, platform));
    }
    let index = assemble(&entries, &annotations).context("building the index")?;
    push_manifest(dst.as_ref(), &ManifestRef::Tag(tag.clone()), &index)
        .await
        .with_context(|| format!("pushing the index to {target}"))?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "target": target.to_string(),
                "digest": index.digest.to_string(),
                "media_type": index.media_type.to_string(),
                "manifests": entries.iter().map(|(m, p)| serde_json::json!({"digest": m.digest.to_string(), "platform": p.to_string()})).collect::<Vec<_>>(),
            })
        ),
        Output::Human if !quiet => eprintln!(
            "created index {target} ({}) from {} images",
            index.digest,
            entries.len()
        ),
        Output::Human => {}
    }
    Ok(ExitCode::from(EXIT_OK))
}
