//! Validation rules over parsed manifests. Pure: manifests in, diagnostics
//! out, no I/O. Every rule has a stable code (`crate::diagnostic::Code`).

mod claims;
mod structure;
mod style;
pub mod syntax;

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;

/// Runs every rule that needs only the tree itself.
pub fn check(manifests: &[Manifest]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for manifest in manifests {
        structure::check(manifest, &mut out);
        style::check(manifest, &mut out);
    }
    claims::check_tree(manifests, &mut out);
    out
}

/// Compares the tree with its base revision: tag moves always, removals
/// unless `allow_removal`.
pub fn against_base(head: &[Manifest], base: &[Manifest], allow_removal: bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    claims::check_against_base(head, base, allow_removal, &mut out);
    out
}
