//! ocirepl: replicate container images between OCI / Docker registries,
//! keeping every manifest byte so digests stay identical.
//!
//! Modules in layer order, bottom up; each uses only the layers below it
//! (`tests/layers.rs` checks this). See `docs/architecture.md`.

// Data: pure types and parsing, no I/O.
pub mod backoff;
pub mod digest;
pub mod manifest;
pub mod media;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod report;
pub mod size;
pub mod verify;

// Secrets: the one home of credentials and where they come from.
pub mod credentials;
// Wire: HTTP to one registry; it decides where credentials may go.
pub mod transport;

// Stores: a repository of a registry, or an OCI layout directory.
pub mod store;

// Engine: copies images between stores.
pub mod copy;

// Mirror jobs: a config of jobs run as one run of the engine.
pub mod sync;

// Entry: command-line syntax, and commands turned into runs.
pub mod app;
pub mod cli;
