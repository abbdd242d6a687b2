//! Command-line syntax: clap derive types and their help texts.
//!
//! Owns flag names, environment variables and defaults as the user sees
//! them. Never does I/O and never interprets a value beyond its type: the
//! app turns these into a plan.

use std::path::PathBuf;

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

    /// Log lines as text, or as one JSON object per line (for log
    /// pipelines; secrets are never logged either way).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy one image (all platforms of a multi-arch image) from SRC to DST.
    Copy(Box<CopyArgs>),
    /// Mirror the repositories and namespaces a YAML config lists (docs/sync.md).
    Sync(SyncArgs),
    /// Show an image: media type, digest, size, platforms and children.
    Inspect(InspectArgs),
    /// List the tags of a repository (following pagination).
    Tags(TagsArgs),
    /// Multi-arch indexes.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Mirror configs: convert a regsync or skopeo sync config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
EXAMPLES:
  ocirepl completions bash > /etc/bash_completion.d/ocirepl
  ocirepl completions zsh > \"${fpath[1]}/_ocirepl\"
  ocirepl completions fish > ~/.config/fish/completions/ocirepl.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = "\
EXAMPLES:
  ocirepl man > ocirepl.1 && man ./ocirepl.1
  ocirepl man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
EXIT CODES: 0 every image copied, up to date or skipped; 1 an image or job failed;
2 the config (FILE:LINE:COLUMN) or the command line is wrong.

EXAMPLES:
  ocirepl sync --check mirror.yaml
  ocirepl sync --plan --job alpine mirror.yaml
  ocirepl sync --daemon --listen 0.0.0.0:9090 --state /var/lib/ocirepl/state.json mirror.yaml
  ocirepl sync --shards 4 mirror.yaml      # in a Kubernetes Indexed Job
  ocirepl sync --status --state /var/lib/ocirepl/state.json")]
pub struct SyncArgs {
    /// The config file (YAML, version 1).
    #[arg(value_name = "CONFIG", required_unless_present = "status")]
    pub config: Option<PathBuf>,

    /// Print each job's last run (start, end, result, images by action,
    /// first error) as the --state file records it, and stop; a daemon
    /// answers the same at GET /v1/status.
    #[arg(long, requires = "state", conflicts_with_all = ["check", "plan", "daemon"])]
    pub status: bool,

    /// Validate the config and stop; nothing is contacted.
    #[arg(long)]
    pub check: bool,

    /// Read both sides and print what each image would get (copy,
    /// up-to-date, skip) with the bytes to move; write nothing.
    #[arg(long, conflicts_with = "check")]
    pub plan: bool,

    /// Run only this job (repeatable).
    #[arg(long = "job", value_name = "NAME")]
    pub only: Vec<String>,

    /// Images copied at once, across all jobs (blob transfers per image too).
    #[arg(long, short = 'j', value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Give up on an image after this many seconds, all retries included.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// How long a connection may stay silent before it counts as broken.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub read_timeout: u64,

    /// human: progress and a summary on stderr; json: one line per image,
    /// then one summary line, on stdout.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    /// Progress bars on stderr (auto: on a terminal, unless -q or --output json).
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Keep running: every job at start, then on its schedule or every.
    /// SIGTERM/SIGINT stop (runs in flight get --grace), SIGHUP reloads.
    #[arg(long, conflicts_with_all = ["check", "plan"])]
    pub daemon: bool,

    /// Seconds runs in flight get to finish after SIGTERM or SIGINT.
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "daemon")]
    pub grace: u64,

    /// Serve /metrics, /healthz and /readyz here, and, with a service:
    /// block in the config, the /v1 endpoints (events, webhooks, status).
    /// --metrics-addr is another name for it.
    #[arg(
        long,
        alias = "metrics-addr",
        value_name = "HOST:PORT",
        requires = "daemon"
    )]
    pub listen: Option<String>,

    /// Write the metrics once, at the end of the run (node-exporter's
    /// textfile collector, for CronJobs).
    #[arg(long, value_name = "PATH", conflicts_with = "daemon")]
    pub metrics_file: Option<PathBuf>,

    /// Remember, per target tag, what was written and what it came from
    /// (filtered tags then cost a HEAD per side; immutable tags nothing).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Run only shard INDEX of COUNT (0-based): each image belongs to
    /// exactly one shard, the same on every run and machine.
    #[arg(long, value_name = "INDEX/COUNT", conflicts_with = "shards")]
    pub shard: Option<String>,

    /// Run shard $JOB_COMPLETION_INDEX of COUNT (a Kubernetes Indexed Job).
    #[arg(long, value_name = "COUNT")]
    pub shards: Option<u64>,

    /// Run the jobs against their sources and write what they select into
    /// this archive (or `oci:DIR`), under the source names, instead of the
    /// targets.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["daemon", "from_archive"])]
    pub to_archive: Option<String>,

    /// Run the jobs with this archive (or `oci:DIR`) in place of each
    /// source, into each job's target; a split archive is found from its
    /// first file.
    #[arg(long, value_name = "PATH", conflicts_with = "daemon")]
    pub from_archive: Option<String>,

    #[command(flatten)]
    pub archive: ArchiveArgs,
}

/// How an archive is written (`copy` to an archive, `sync --to-archive`).
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// Leave out every blob and manifest an earlier export carried, by its
    /// inventory (`PATH.inventory.json`); repeatable.
    #[arg(long, value_name = "INVENTORY")]
    pub since: Vec<PathBuf>,

    /// Split the archive into files no larger than SIZE (700MiB, 4GB),
    /// at entry boundaries: PATH, PATH.2, PATH.3, …
    #[arg(long, value_name = "SIZE")]
    pub volume_size: Option<String>,

    /// Compress the archive (layers are compressed already: none is the
    /// default).
    #[arg(long, value_enum, default_value_t = CompressArg::None)]
    pub compress: CompressArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write ocirepl.1 and one page per subcommand (ocirepl-copy.1, ...) here
    /// instead of printing ocirepl.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Assemble a multi-arch index from single-platform images (platform read
    /// from each image's config), copying them into DST's repository first
    /// when they live elsewhere.
    #[command(after_help = "\
EXAMPLES:
  ocirepl index create registry.example.com/app:1.0 \\
      --from registry.example.com/app:1.0-amd64 --from registry.example.com/app:1.0-arm64
  ocirepl index create localhost:5000/tool:2 --from oci:./amd64:2 --from oci:./arm64:2 \\
      --annotation org.opencontainers.image.source=https://example.com/tool")]
    Create(IndexCreateArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
EXAMPLES:
  ocirepl inspect docker.io/library/alpine:3.20
  ocirepl inspect --raw localhost:5000/app@sha256:3f1a... | jq .
  ocirepl inspect --output json oci:./layout:1.0")]
pub struct InspectArgs {
    /// The image: [docker://]HOST/REPO[:TAG][@DIGEST] or oci:PATH[:TAG].
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Print the manifest's exact bytes and nothing else.
    #[arg(long)]
    pub raw: bool,

    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    /// Ask for indexes first (a registry that negotiates then shows the whole multi-arch image).
    #[arg(long)]
    pub prefer_index: bool,

    /// List what refers to the manifest (signatures, SBOMs, attestations):
    /// artifact type, digest, size, annotations, and where it was found.
    #[arg(long)]
    pub referrers: bool,

    #[command(flatten)]
    pub src: SourceAccess,

    /// Auth file (podman auth.json or docker config.json format).
    #[arg(long, value_name = "PATH", env = "OCIREPL_AUTHFILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
EXAMPLES:
  ocirepl tags docker.io/library/alpine
  ocirepl tags --output json --src-creds robot:$TOKEN registry.example.com/team/app")]
pub struct TagsArgs {
    /// The repository: [docker://]HOST/REPO or oci:PATH.
    #[arg(value_name = "REPO")]
    pub repository: String,

    /// Tags asked per page (the registry may send fewer); pages are followed.
    #[arg(long, value_name = "N")]
    pub page_size: Option<u32>,

    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    #[command(flatten)]
    pub src: SourceAccess,

    /// Auth file (podman auth.json or docker config.json format).
    #[arg(long, value_name = "PATH", env = "OCIREPL_AUTHFILE")]
    pub authfile: Option<PathBuf>,
}

/// Verify before mirror: only images signed by these keys or identities
/// are copied, checked against the digest that is pushed.
#[derive(Debug, Args, Default)]
pub struct VerifyArgs {
    /// Copy only images cosign-signed with this PEM public key (repeatable;
    /// any one is enough): ECDSA P-256/P-384, Ed25519, RSA.
    #[arg(long = "verify-key", value_name = "PATH")]
    pub keys: Vec<PathBuf>,

    /// With --verify-key: the signature must also be in a transparency
    /// log the trusted root names (as cosign verify does by default).
    #[arg(long = "verify-tlog", requires = "keys")]
    pub tlog: bool,

    /// Copy only images signed keylessly with a certificate from this OIDC
    /// issuer (exact, glob or regex:RE).
    #[arg(long = "verify-issuer", value_name = "PATTERN", requires = "subject")]
    pub issuer: Option<String>,

    /// ... and for this identity (e-mail or URI; exact, glob or regex:RE,
    /// unanchored unless you anchor it).
    #[arg(long = "verify-subject", value_name = "PATTERN", requires = "issuer")]
    pub subject: Option<String>,

    /// A Sigstore trusted_root.json (Fulcio CAs, Rekor and CT log keys);
    /// default: the public-good one, built in. Never fetched.
    #[arg(long, value_name = "PATH")]
    pub trusted_root: Option<PathBuf>,

    /// Keyless: accept a certificate without a verified SCT (a private
    /// CA without a certificate transparency log).
    #[arg(long, requires = "issuer")]
    pub insecure_ignore_sct: bool,

    /// A multi-arch image: each kept child must be signed too (cosign sign
    /// --recursive), not only the index.
    #[arg(long)]
    pub verify_children: bool,

    /// An image no policy passes is never copied; fail (exit 1) or skip
    /// (exit 0).
    #[arg(long, value_enum, default_value_t = OnUnverifiedArg::Fail)]
    pub on_unverified: OnUnverifiedArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OnUnverifiedArg {
    #[default]
    Fail,
    Skip,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the ocirepl config equivalent to a regsync config or a
    /// skopeo sync YAML; what has no equivalent is listed on stderr and
    /// the exit code is 1.
    #[command(after_help = "\
EXAMPLES:
  ocirepl config convert --from regsync regsync.yml > mirror.yaml
  ocirepl config convert --from skopeo --target registry.internal/mirror sync.yml > mirror.yaml")]
    Convert(ConvertArgs),
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The tool that reads FILE.
    #[arg(long = "from", value_enum)]
    pub from: ConvertFrom,

    /// The config file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// skopeo: the destination `skopeo sync` was given (HOST/PREFIX).
    #[arg(long, value_name = "HOST/PREFIX")]
    pub target: Option<String>,

    /// skopeo: as `skopeo sync --scoped` (keep the source's host and path
    /// below the destination).
    #[arg(long)]
    pub scoped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertFrom {
    Regsync,
    Skopeo,
}

#[derive(Debug, Args)]
pub struct IndexCreateArgs {
    /// Where the index goes: HOST/REPO:TAG.
    #[arg(value_name = "DST")]
    pub destination: String,

    /// A single-platform image to include (repeatable, in order).
    #[arg(long = "from", value_name = "REF", required = true)]
    pub from: Vec<String>,

    /// An annotation on the outer index, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    #[command(flatten)]
    pub src: SourceAccess,

    #[command(flatten)]
    pub dest: DestAccess,

    /// Auth file for both sides.
    #[arg(long, value_name = "PATH", env = "OCIREPL_AUTHFILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Bars when stderr is a terminal and the output is for people.
    Auto,
    /// Bars on stderr whatever it is.
    Always,
    /// No bars.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Verbatim,
    PreferIndex,
    NormaliseIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadModeArg {
    Auto,
    Monolithic,
    SinglePost,
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    V2s2,
    Oci,
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

EXIT CODES: 0 success, 1 the copy failed, 2 usage error.

EXAMPLES:
  ocirepl copy docker.io/library/alpine:3.20 registry.example.com/mirror/alpine:3.20
  ocirepl copy --platform linux/amd64,linux/arm64 ghcr.io/acme/app:1.4 localhost:5000/app:1.4
  ocirepl copy --all-tags --output json quay.io/acme/tool registry.example.com/acme/tool")]
pub struct CopyArgs {
    /// The image to copy.
    #[arg(value_name = "SRC")]
    pub source: String,

    /// Where to copy it; several DSTs get the image from one read of SRC
    /// (each succeeds or fails on its own).
    #[arg(value_name = "DST", required = true, num_args = 1..)]
    pub destinations: Vec<String>,

    #[command(flatten)]
    pub src: SourceAccess,

    #[command(flatten)]
    pub dest: DestAccess,

    /// Auth file for both sides (podman auth.json or docker config.json
    /// format), instead of the default files.
    #[arg(long, value_name = "PATH", env = "OCIREPL_AUTHFILE")]
    pub authfile: Option<PathBuf>,

    /// Copy every tag of the SRC repository to the DST repository (both
    /// given without tag); one report per tag.
    #[arg(long, conflicts_with = "unwrap")]
    pub all_tags: bool,

    /// Keep only these platforms of a multi-arch image (OS/ARCH[/VARIANT],
    /// repeatable or comma-separated). The result is a new index, reported.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_delimiter = ',')]
    pub platform: Vec<String>,

    /// With a --platform matching exactly one image, push that image under
    /// the tag instead of an index (its digest is kept).
    #[arg(long, requires = "platform")]
    pub unwrap: bool,

    /// verbatim: what the registry serves; prefer-index: ask for indexes
    /// first; normalise-index: also wrap a single image in a one-entry index.
    #[arg(long, value_enum, default_value_t = ModeArg::Verbatim)]
    pub mode: ModeArg,

    /// auto: the source's format, converting schema1 only if the target
    /// refuses it; v2s2: convert schema1; oci: OCI media types.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Fetch foreign (non-distributable) layers from their URLs, without
    /// credentials, and push them; by default they stay where they are.
    #[arg(long)]
    pub include_foreign: bool,

    /// Copy what refers to the image too (signatures, SBOMs, attestations):
    /// OCI 1.1 referrers, the referrers tag schema and cosign's tags,
    /// recursively, for the image and every child copied.
    #[arg(long)]
    pub referrers: bool,

    /// With --referrers, only referrers of this artifact type (repeatable).
    /// cosign's tags count as application/vnd.dev.cosign.artifact.{sig,att,sbom}.v1+json.
    #[arg(long = "referrers-type", value_name = "TYPE", requires = "referrers")]
    pub referrers_types: Vec<String>,

    /// Largest uncompressed size accepted when a layer is gunzipped for its
    /// diff_id (schema1 conversion); bigger is treated as a decompression bomb.
    #[arg(long, value_name = "BYTES", default_value_t = crate::plan::MAX_UNCOMPRESSED_LAYER)]
    pub max_uncompressed_layer: u64,

    /// Distinct child manifests one image may have (a wider index is refused
    /// before its children are fetched).
    #[arg(long, value_name = "N", default_value_t = crate::plan::MAX_INDEX_CHILDREN)]
    pub max_index_children: usize,

    /// Manifest bytes one image may hold in memory, root and children together.
    #[arg(long, value_name = "BYTES", default_value_t = crate::plan::MAX_IMAGE_MANIFEST_BYTES)]
    pub max_image_manifest_bytes: u64,

    /// auto: monolithic, chunked after a 413; monolithic: POST then one PUT
    /// with the body; single-post: one POST with the body where the registry
    /// takes it; chunked: PATCHes of --chunk-size, resumable.
    #[arg(long, value_enum, default_value_t = UploadModeArg::Auto)]
    pub upload_mode: UploadModeArg,

    /// Chunk size for chunked uploads (the registry's OCI-Chunk-Min-Length wins if larger).
    #[arg(long, value_name = "BYTES", default_value_t = crate::store::registry::upload::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,

    /// Give up on an image after this many seconds, all retries included.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// How long a connection may stay silent before it counts as broken
    /// (then retried or resumed).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub read_timeout: u64,

    /// Largest manifest read into memory; 4 MiB is what every registry must accept.
    #[arg(long, value_name = "BYTES", default_value_t = crate::manifest::MAX_MANIFEST_SIZE)]
    pub max_manifest_size: u64,

    /// Blob transfers and manifest fetches run at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    /// Progress bars on stderr: auto draws them on a terminal unless -q or
    /// --output json.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// For an oci-archive: or docker-archive: DST.
    #[command(flatten)]
    pub archive: ArchiveArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// How to reach the source registry.
#[derive(Debug, Args)]
pub struct SourceAccess {
    /// Credentials for the source registry.
    #[arg(
        id = "src_creds",
        long = "src-creds",
        value_name = "USER:PASS",
        env = "OCIREPL_SRC_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,

    /// OAuth2 refresh token (identity token) for the source registry.
    #[arg(
        id = "src_registry_token",
        long = "src-registry-token",
        value_name = "TOKEN",
        env = "OCIREPL_SRC_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    pub registry_token: Option<String>,

    /// Access the source anonymously, whatever the auth files say.
    #[arg(id = "src_no_creds", long = "src-no-creds", conflicts_with_all = ["src_creds", "src_registry_token"])]
    pub no_creds: bool,

    /// Auth file for the source only.
    #[arg(id = "src_authfile", long = "src-authfile", value_name = "PATH")]
    pub authfile: Option<PathBuf>,

    /// Verify the source's TLS certificate (false also allows plain http).
    /// Loopback registries use http unless this is true or a cert dir is given.
    #[arg(id = "src_tls_verify", long = "src-tls-verify", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,

    /// Certificates for the source, docker certs.d layout: *.crt are extra
    /// CAs, *.cert + *.key a client certificate.
    /// [default: /etc/docker/certs.d/HOST[:PORT] or /etc/containers/certs.d/HOST[:PORT] when present]
    #[arg(id = "src_cert_dir", long = "src-cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// How to reach the destination registry.
#[derive(Debug, Args)]
pub struct DestAccess {
    /// Credentials for the destination registry.
    #[arg(
        id = "dest_creds",
        long = "dest-creds",
        value_name = "USER:PASS",
        env = "OCIREPL_DEST_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,

    /// OAuth2 refresh token (identity token) for the destination registry.
    #[arg(
        id = "dest_registry_token",
        long = "dest-registry-token",
        value_name = "TOKEN",
        env = "OCIREPL_DEST_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    pub registry_token: Option<String>,

    /// Access the destination anonymously, whatever the auth files say.
    #[arg(id = "dest_no_creds", long = "dest-no-creds", conflicts_with_all = ["dest_creds", "dest_registry_token"])]
    pub no_creds: bool,

    /// Auth file for the destination only.
    #[arg(id = "dest_authfile", long = "dest-authfile", value_name = "PATH")]
    pub authfile: Option<PathBuf>,

    /// Verify the destination's TLS certificate (false also allows plain http).
    #[arg(id = "dest_tls_verify", long = "dest-tls-verify", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,

    /// Certificates for the destination (docker certs.d layout).
    #[arg(id = "dest_cert_dir", long = "dest-cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}
