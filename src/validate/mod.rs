//! Validation rules over parsed manifests; produces diagnostics.
