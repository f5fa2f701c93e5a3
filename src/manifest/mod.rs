//! kpromo manifests: the model, span-aware parsing of both layouts, and
//! where the files come from (work tree or a git revision).
//!
//! This module reads and reports shape problems; the rules about what the
//! manifests mean live in `crate::validate`.

pub mod load;
pub mod model;
pub mod read;
pub mod source;
pub mod yaml;

pub use load::{LoadError, Loaded};
pub use model::{DigestEntry, Image, Located, Manifest, Registry};
