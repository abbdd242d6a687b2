//! ocirepl: replicate container images between OCI / Docker registries,
//! keeping every manifest byte so digests stay identical.
//!
//! Layers, top to bottom (dependencies point down only):
//! `cli`/`app` → `copy` → `store` → `transport`, with the pure data modules
//! (`reference`, `digest`, `media`, `platform`, `manifest`, `plan`,
//! `report`) below them all. See `docs/architecture.md`.

pub mod app;
pub mod cli;
pub mod copy;
pub mod credentials;
pub mod digest;
pub mod manifest;
pub mod media;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod report;
pub mod store;
pub mod transport;
