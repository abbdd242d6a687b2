//! Command-line syntax: clap derive types and their help texts.
//!
//! Owns flag names, environment variables and defaults as the user sees
//! them. Never does I/O and never interprets a value beyond its type: the
//! app turns these into a plan.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ocirepl",
    version,
    about = "Replicate container images between OCI / Docker registries, byte-exact",
    propagate_version = true
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy one image (all platforms of a multi-arch image) from SRC to DST.
    Copy(CopyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A short summary on stderr.
    Human,
    /// One JSON report per image on stdout.
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "\
REFERENCES:
  [docker://]HOST[:PORT]/REPO[:TAG][@DIGEST]   an image in a registry
  alpine:3, user/app                           Docker Hub short forms
  oci:PATH[:TAG]                               an OCI image layout directory

A DST without tag takes the source's tag; a source named by digest and a
DST without tag push by digest only. Loopback registries (localhost,
127.0.0.0/8, [::1]) are spoken to over plain http.

EXIT CODES: 0 success, 1 the copy failed, 2 usage error.")]
pub struct CopyArgs {
    /// The image to copy.
    #[arg(value_name = "SRC")]
    pub source: String,

    /// Where to copy it.
    #[arg(value_name = "DST")]
    pub destination: String,

    /// Credentials for the source registry.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "OCIREPL_SRC_CREDS",
        hide_env_values = true
    )]
    pub src_creds: Option<String>,

    /// Credentials for the destination registry.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "OCIREPL_DEST_CREDS",
        hide_env_values = true
    )]
    pub dest_creds: Option<String>,

    /// Verify the source's TLS certificate (false also allows plain http).
    /// Loopback registries use http unless this is set to true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub src_tls_verify: Option<bool>,

    /// Verify the destination's TLS certificate (false also allows plain http).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dest_tls_verify: Option<bool>,

    /// Blob transfers and manifest fetches run at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}
