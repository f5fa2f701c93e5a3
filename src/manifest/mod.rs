//! kpromo manifests: the model, span-aware parsing of both layouts.
