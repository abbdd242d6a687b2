//! `ocirepl completions SHELL` and `ocirepl man`: shell completion scripts
//! and manual pages generated from the same clap definitions as the
//! commands themselves, so they cannot drift.
//!
//! Owns nothing but the generation; the words are in `cli`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::EXIT_OK;
use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub(super) fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut Cli::command(), "ocirepl", &mut out);
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from(EXIT_OK))
}

pub(super) fn man(args: ManArgs) -> Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("writing to stdout")?;
            out.flush().context("writing to stdout")?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
