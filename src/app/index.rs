//! `ocirepl index create`: flags → the parts, opened → `copy::create_index`
//! (which copies the images by digest and pushes the index last) → a line
//! or JSON.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::copy::print_report;
use super::{EXIT_OK, UsageError, access, parse_ref};
use crate::cli::{IndexCreateArgs, Output};
use crate::copy::{IndexError, IndexPart, Replicator, RunSettings, create_index};
use crate::credentials::Env;
use crate::plan::DEFAULT_TAG;
use crate::reference::ImageRef;
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
    let mut parts = Vec::new();
    for from in &args.from {
        let source = parse_ref(from, "--from")?;
        let src = stores.open(&source, &src_access, Role::Source)?;
        parts.push(IndexPart { source, src });
    }
    let made = create_index(
        &replicator,
        &parts,
        (&target, dst.as_ref()),
        &tag,
        &annotations,
    )
    .await;
    let (index, entries) = match made {
        Ok(done) => done,
        Err(IndexError::Usage(why)) => bail!(UsageError(why)),
        Err(IndexError::Copy(report)) => {
            print_report(&report, Output::Human, quiet, &|l| eprintln!("{l}"))?;
            bail!(IndexError::Copy(report));
        }
        Err(e) => bail!(e),
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "target": target.to_string(),
                "digest": index.digest.to_string(),
                "media_type": index.media_type.to_string(),
                "manifests": entries.iter().map(|e| serde_json::json!({"digest": e.digest.to_string(), "platform": e.platform.to_string()})).collect::<Vec<_>>(),
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
