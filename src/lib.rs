//! `promoter`: promotes container images from a staging registry to
//! production registries, as described by kpromo-compatible YAML manifests.
//!
//! Data flows one way (see docs/architecture.md):
//! `manifest` (parse, with spans) -> `validate` (rules -> diagnostics)
//! -> `report` (human, JSON, GitHub annotations).
//! `registry` holds the I/O side: one small trait, an HTTP backend and an
//! OCI image-layout backend.

pub mod action;
pub mod attest;
pub mod check;
pub mod cip;
pub mod cli;
pub mod color;
pub mod completions;
pub mod config;
pub mod copy;
pub mod counter;
pub mod diagnostic;
pub mod github_oidc;
pub mod logging;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod report;
pub mod retry;
pub mod rules;
pub mod run;
pub mod shard;
pub mod sign;
pub mod validate;
pub mod verify;
pub mod verify_bundle;
