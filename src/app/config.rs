//! `ocirepl config convert`: a regsync or skopeo sync config read, the
//! ocirepl config printed on stdout, what has no equivalent on stderr
//! (exit 1 when there is any: nothing is dropped silently).

use std::io::Read;
use std::process::ExitCode;

use anyhow::Result;

use super::{EXIT_FAILED, EXIT_OK, UsageError};
use crate::cli::{ConvertArgs, ConvertFrom};
use crate::sync::convert::{self, Destination, From};

/// The largest config file read.
const MAX_FILE: u64 = 4 * 1024 * 1024;

pub(super) fn convert(args: ConvertArgs) -> Result<ExitCode> {
    let name = args.file.display().to_string();
    let text = read(&args.file).map_err(|e| UsageError(format!("{name}: {e}")))?;
    let from = match args.from {
        ConvertFrom::Regsync => From::Regsync,
        ConvertFrom::Skopeo => From::Skopeo,
    };
    let destination = args.target.map(|target| Destination {
        target,
        scoped: args.scoped,
    });
    let converted = convert::convert(from, &name, &text, destination.as_ref())
        .map_err(|e| UsageError(e.to_string()))?;
    print!("{}", converted.text);
    for n in &converted.notes {
        eprintln!("note: {n}");
    }
    for u in &converted.unsupported {
        eprintln!("{name}: not converted: {u}");
    }
    Ok(ExitCode::from(match converted.unsupported.is_empty() {
        true => EXIT_OK,
        false => EXIT_FAILED,
    }))
}

fn read(path: &std::path::Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes"
        )));
    }
    Ok(text)
}

/// For `ocirepl sync` given another tool's config: what it looks like,
/// and the command that converts it.
pub(super) fn hint(path: &std::path::Path) -> Option<String> {
    let text = read(path).ok()?;
    let (tool, flag) = match convert::recognise(&text)? {
        From::Regsync => ("a regsync config", "--from regsync"),
        From::Skopeo => ("a skopeo sync config", "--from skopeo --target HOST/PREFIX"),
    };
    Some(format!(
        "{} looks like {tool}: convert it with `ocirepl config convert {flag} {} > mirror.yaml`",
        path.display(),
        path.display()
    ))
}
