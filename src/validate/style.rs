//! Style rules (warnings): sorted images and digests, quoted digests. They
//! keep diffs small and reviews easy; they never block a promotion.
//! Sorting findings are reported once per file, at the first offender, so
//! an unsorted legacy file gives one warning, not thousands.

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::Manifest;

/// Checks one manifest's images file.
pub fn check(manifest: &Manifest, out: &mut Vec<Diagnostic>) {
    let names: Vec<_> = manifest
        .images
        .iter()
        .filter_map(|i| i.name.as_ref())
        .collect();
    let unsorted = names.windows(2).filter(|w| w[1].value < w[0].value).count();
    if let Some(pair) = names.windows(2).find(|w| w[1].value < w[0].value) {
        out.push(
            Diagnostic::new(
                Code::UnsortedImages,
                Some(pair[1].at.clone()),
                format!(
                    "images are not sorted by name: `{}` comes after `{}` ({unsorted} place{} in this file)",
                    pair[1].value,
                    pair[0].value,
                    if unsorted == 1 { "" } else { "s" }
                ),
            )
            .help("sort the image entries by name"),
        );
    }

    let mut unsorted_dmaps = 0;
    let mut first = None;
    for image in &manifest.images {
        let Some(dmap) = &image.dmap else { continue };
        if let Some(pair) = dmap
            .windows(2)
            .find(|w| w[1].digest.value < w[0].digest.value)
        {
            unsorted_dmaps += 1;
            first.get_or_insert(&pair[1].digest);
        }
        for entry in dmap.iter().filter(|e| !e.quoted) {
            out.push(
                Diagnostic::new(
                    Code::UnquotedDigest,
                    Some(entry.digest.at.clone()),
                    format!("digest `{}` is not quoted", entry.digest.value),
                )
                .help("quote digest keys (`\"sha256:...\"`): tools that grep for quoted digests, like kpromo's PR filter, skip unquoted ones"),
            );
        }
    }
    if let Some(digest) = first {
        out.push(
            Diagnostic::new(
                Code::UnsortedDigests,
                Some(digest.at.clone()),
                format!("digests are not sorted in {unsorted_dmaps} dmap{} of this file; the first is here", if unsorted_dmaps == 1 { "" } else { "s" }),
            )
            .help("sort each dmap by digest"),
        );
    }
}
