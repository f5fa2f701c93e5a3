//! Rules about one manifest on its own: its registries, its image entries
//! and the syntax of every value in them.

use super::syntax;
use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::{Image, Manifest};

/// Checks one manifest, appending findings.
pub fn check(manifest: &Manifest, out: &mut Vec<Diagnostic>) {
    registries(manifest, out);
    for image in &manifest.images {
        image_entry(image, out);
    }
}

fn registries(manifest: &Manifest, out: &mut Vec<Diagnostic>) {
    if manifest.registries.is_empty() {
        out.push(
            Diagnostic::new(
                Code::EmptyRegistries,
                Some(manifest.registries_at.clone()),
                "the manifest lists no registries",
            )
            .help("add `registries:` with one `src: true` staging registry and at least one destination"),
        );
        return;
    }
    let sources: Vec<_> = manifest.registries.iter().filter(|r| r.src).collect();
    match sources.as_slice() {
        [] => out.push(
            Diagnostic::new(
                Code::SourceRegistry,
                Some(manifest.registries_at.clone()),
                "no registry is marked `src: true`",
            )
            .help("mark the staging registry the images are copied from with `src: true`"),
        ),
        [_] => {}
        [first, rest @ ..] => {
            for extra in rest {
                out.push(
                    Diagnostic::new(
                        Code::SourceRegistry,
                        Some(extra.at.clone()),
                        "more than one registry is marked `src: true`",
                    )
                    .help("exactly one registry is the staging source; remove `src: true` from the others")
                    .related(first.at.clone(), "first source registry"),
                );
            }
        }
    }
    if manifest.registries.iter().all(|r| r.src) {
        out.push(
            Diagnostic::new(
                Code::EmptyRegistries,
                Some(manifest.registries_at.clone()),
                "the manifest has no destination registry",
            )
            .help("add at least one registry without `src: true` to promote into"),
        );
    }
    for registry in &manifest.registries {
        match &registry.name {
            Some(name) if !name.value.is_empty() => {
                if let Err(why) = syntax::registry_name(&name.value) {
                    out.push(
                        Diagnostic::new(
                            Code::InvalidRegistryName,
                            Some(name.at.clone()),
                            format!("invalid registry name `{}`: {why}", name.value),
                        )
                        .help("write it as host[:port][/path], e.g. `us-docker.pkg.dev/project/images`"),
                    );
                }
            }
            _ => out.push(
                Diagnostic::new(
                    Code::EmptyName,
                    Some(registry.at.clone()),
                    "this registry has no `name`",
                )
                .help("give the registry's name, e.g. `name: gcr.io/my-staging`"),
            ),
        }
    }
}

fn image_entry(image: &Image, out: &mut Vec<Diagnostic>) {
    let name = match &image.name {
        Some(name) if !name.value.is_empty() => {
            if let Err(why) = syntax::image_name(&name.value) {
                out.push(
                    Diagnostic::new(
                        Code::InvalidImageName,
                        Some(name.at.clone()),
                        format!("invalid image name `{}`: {why}", name.value),
                    )
                    .help("image names are lowercase path components such as `sig/app-name`"),
                );
            }
            name.value.as_str()
        }
        _ => {
            out.push(
                Diagnostic::new(
                    Code::EmptyName,
                    Some(image.at.clone()),
                    "this image entry has no `name`",
                )
                .help("add `name:` with the image's name in the staging registry"),
            );
            "(unnamed)"
        }
    };
    let Some(dmap) = image.dmap.as_ref().filter(|d| !d.is_empty()) else {
        out.push(
            Diagnostic::new(
                Code::EmptyDmap,
                Some(image.dmap_at.clone()),
                format!("image `{name}` has an empty `dmap`: nothing to promote"),
            )
            .help("list digests under `dmap:` (`\"sha256:<64 hex>\": [\"tag\"]`), or remove the entry"),
        );
        return;
    };
    for entry in dmap {
        if let Err(why) = syntax::digest(&entry.digest.value) {
            out.push(
                Diagnostic::new(
                    Code::InvalidDigest,
                    Some(entry.digest.at.clone()),
                    format!("invalid digest `{}` in image `{name}`: {why}", entry.digest.value),
                )
                .help("copy the full digest from the staging registry, e.g. `crane digest <image>:<tag>`"),
            );
        }
        for (i, tag) in entry.tags.iter().enumerate() {
            if let Err(why) = syntax::tag(&tag.value) {
                out.push(
                    Diagnostic::new(
                        Code::InvalidTag,
                        Some(tag.at.clone()),
                        format!("invalid tag `{}` in image `{name}`: {why}", tag.value),
                    )
                    .help("tags match `^\\w[\\w.-]{0,127}$`"),
                );
            }
            if let Some(first) = entry.tags[..i].iter().find(|t| t.value == tag.value) {
                out.push(
                    Diagnostic::new(
                        Code::DuplicateTag,
                        Some(tag.at.clone()),
                        format!("tag `{}` is listed twice for the same digest", tag.value),
                    )
                    .help("remove the second one")
                    .related(first.at.clone(), "first listed here"),
                );
            }
        }
    }
}
