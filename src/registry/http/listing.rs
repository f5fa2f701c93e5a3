//! Reading what a repository holds over HTTP: `tags/list` with `Link`
//! pagination and `"tags": null`, the Artifact Registry / GCR `manifest`
//! extension (digest -> tags and media type in the same response), the
//! fallback of one HEAD per tag, and referrers (API, then the `sha256-<hex>`
//! tag schema; a host found without the API is asked for the tag only).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::ACCEPT;
use reqwest::{Method, Response};
use serde::Deserialize;
use url::Url;

use super::{HttpRegistry, scope, transport};
use crate::registry::digest::Digest;
use crate::registry::error::{Error, Result};
use crate::registry::manifest::{self, Descriptor, Manifest};
use crate::registry::reference::{Reference, RepoName};
use crate::registry::{Inventory, InventoryEntry, Registry};

/// Tags asked for per page, unless `HttpOptions::tags_page_size` says otherwise. Registries cap it themselves (distribution: no
/// cap by default; Artifact Registry: 10,000), so any value works; fewer
/// pages means fewer requests.
const PAGE_SIZE: usize = 1000;

/// HEAD requests in flight while building an inventory without the GCR
/// extension: enough to hide latency, few enough not to look like a burst.
const INVENTORY_CONCURRENCY: usize = 8;

/// Most pages we follow, so that a registry sending the same `Link` forever
/// cannot keep us busy forever (100 pages of 1000 tags).
const MAX_PAGES: usize = 10_000;

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Artifact Registry / GCR extension.
    #[serde(default)]
    manifest: Option<BTreeMap<String, GcrManifest>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcrManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    tag: Vec<String>,
}

/// Every page of `tags/list`, merged.
pub(super) struct Tags {
    pub tags: Vec<String>,
    /// The GCR `manifest` map, when the registry sent one.
    pub gcr: Option<Inventory>,
}

/// The `rel="next"` target of a `Link` header.
fn next_link(response: &Response) -> Option<String> {
    let value = transport::header_str(response, "link")?;
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
                || p.trim() == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// Parse one `tags/list` page into `tags` (and `gcr`).
fn merge_page(body: &[u8], url: &Url, tags: &mut Tags) -> Result<()> {
    let page: TagsPage = serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        url: url.to_string(),
        reason: format!("not a tags list: {e}"),
    })?;
    tags.tags.extend(page.tags.unwrap_or_default());
    if let Some(map) = page.manifest {
        let inventory = tags.gcr.get_or_insert_with(Inventory::default);
        for (digest, entry) in map {
            let digest: Digest = digest.parse().map_err(|e| Error::InvalidResponse {
                url: url.to_string(),
                reason: format!("manifest map: {e}"),
            })?;
            let slot = inventory.manifests.entry(digest).or_default();
            slot.media_type = entry.media_type.or(slot.media_type.take());
            slot.tags.extend(entry.tag);
        }
    }
    Ok(())
}

impl HttpRegistry {
    /// Follow `tags/list` pages to the end. An unknown repository has no tags.
    pub(super) async fn tags_pages(&self, repo: &RepoName) -> Result<Tags> {
        let mut tags = Tags {
            tags: Vec::new(),
            gcr: None,
        };
        let asked = self.state.tags_page_size.unwrap_or(PAGE_SIZE);
        let page_size = self
            .state
            .quirks
            .max_page
            .map_or(asked, |cap| asked.min(cap));
        let mut url = self.url(repo, &format!("tags/list?n={page_size}")).await?;
        for _ in 0..MAX_PAGES {
            // One page is one retried operation: a failure on page 40 does
            // not start the listing over.
            let page = self
                .retrying("GET tags/list", || self.tags_page(repo, &url))
                .await?;
            let Some((next, body)) = page else {
                return Ok(tags);
            };
            merge_page(&body, &url, &mut tags)?;
            let Some(next) = next else {
                return Ok(tags);
            };
            url = url.join(&next).map_err(|e| Error::InvalidResponse {
                url: url.to_string(),
                reason: format!("bad Link header: {e}"),
            })?;
        }
        Err(Error::InvalidResponse {
            url: url.to_string(),
            reason: format!("more than {MAX_PAGES} pages of tags"),
        })
    }

    /// One page: the `Link` to the next one and the body, or `None` for
    /// an unknown repository.
    async fn tags_page(
        &self,
        repo: &RepoName,
        url: &Url,
    ) -> Result<Option<(Option<String>, Bytes)>> {
        let Some(response) = self
            .pull(repo, transport::Request::new(Method::GET, url.clone()))
            .await?
        else {
            return Ok(None);
        };
        let next = next_link(&response);
        let body = response.bytes().await.map_err(|source| Error::Transport {
            method: "GET".into(),
            url: url.to_string(),
            cause: source,
        })?;
        Ok(Some((next, body)))
    }

    /// The inventory: from the GCR extension in one request when available,
    /// else from the tags and one HEAD per tag that `wanted` accepts.
    pub(super) async fn read_inventory(
        &self,
        repo: &RepoName,
        wanted: &(dyn for<'t> Fn(&'t str) -> bool + Sync + '_),
    ) -> Result<Inventory> {
        let tags = self.tags_pages(repo).await?;
        // The GCR map, where there is one, is incomplete past 10,000 tags
        // (go-containerregistry `pkg/v1/google/list.go`): the tags it lacks
        // are resolved one by one like those of any registry.
        let mut inventory = tags.gcr.unwrap_or_default();
        let mapped: std::collections::HashSet<&str> = inventory
            .manifests
            .values()
            .flat_map(|e| e.tags.iter().map(String::as_str))
            .collect();
        let unmapped: Vec<String> = tags
            .tags
            .iter()
            .filter(|t| !mapped.contains(t.as_str()))
            .cloned()
            .collect();
        drop(mapped);
        let wanted_tags = unmapped.into_iter().filter(|t| wanted(t));
        let heads: Vec<(String, Option<Descriptor>)> = futures_util::stream::iter(wanted_tags)
            .map(|tag| async move {
                let reference = Reference::Tag(tag.clone());
                let head = self.head_manifest(repo, &reference).await?;
                Ok::<_, Error>((tag, head))
            })
            .buffer_unordered(INVENTORY_CONCURRENCY)
            .try_collect()
            .await?;
        for (tag, head) in heads {
            // A tag deleted between the listing and the HEAD is simply gone.
            let Some(head) = head else { continue };
            let entry: &mut InventoryEntry = inventory.manifests.entry(head.digest).or_default();
            entry.tags.insert(tag);
            entry.media_type = Some(head.media_type);
        }
        Ok(inventory)
    }

    /// Referrers of `subject`: `GET /v2/<repo>/referrers/<digest>`, every
    /// page of it (`Link`), or the `sha256-<hex>` tag's index where the API
    /// is not there. A plain 404 (not an OCI error document) means the route
    /// does not exist: this repository is asked for the tag only from then
    /// on. Quay answers 400 for some subjects it does not know
    /// (quay/quay#2597): no referrers there, and the tag schema is read.
    pub(super) async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>> {
        if !self.no_referrers_api(repo) {
            let mut url = self.url(repo, &format!("referrers/{subject}")).await?;
            let mut found = Vec::new();
            for _ in 0..MAX_PAGES {
                let request = transport::Request::new(Method::GET, url.clone())
                    .header(ACCEPT, manifest::OCI_INDEX);
                let response = self.call(request, &[scope(repo, false)], repo).await?;
                let status = response.status();
                if status.is_success() {
                    let next = next_link(&response);
                    let body = self
                        .read_manifest_body(
                            response,
                            &format!("{}@{subject} referrers", self.location(repo)),
                        )
                        .await?;
                    let index = Manifest::new(Some(manifest::OCI_INDEX), body)?;
                    found.extend(index.child_manifests()?);
                    let Some(next) = next else {
                        return Ok(found);
                    };
                    url = url.join(&next).map_err(|e| Error::InvalidResponse {
                        url: url.to_string(),
                        reason: format!("bad Link header: {e}"),
                    })?;
                    continue;
                }
                if status == reqwest::StatusCode::BAD_REQUEST && found.is_empty() {
                    break;
                }
                if !transport::is_not_found(status) || !found.is_empty() {
                    return Err(self.fail(&Method::GET, repo, response, "pull").await);
                }
                // A registry that serves the referrers API never answers 404
                // for a known repository (OCI distribution spec 1.1).
                let body = response.text().await.unwrap_or_default();
                if !body.contains("\"errors\"") {
                    self.note_no_referrers_api(repo);
                }
                break;
            }
        }
        self.referrers_from_tag(repo, subject).await
    }

    fn no_referrers_api(&self, repo: &RepoName) -> bool {
        let set = self.state.no_referrers_api.lock();
        set.unwrap_or_else(|p| p.into_inner())
            .contains(repo.as_str())
    }

    fn note_no_referrers_api(&self, repo: &RepoName) {
        let set = self.state.no_referrers_api.lock();
        set.unwrap_or_else(|p| p.into_inner())
            .insert(repo.as_str().to_owned());
    }

    /// The `sha256-<hex>` tag's index, when it is one: a registry may
    /// resolve that tag to the subject itself (GitLab,
    /// oras-project/oras-go#1396), which is no list of referrers.
    async fn referrers_from_tag(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>> {
        let tag = Reference::Tag(subject.referrers_tag());
        match self.get_manifest_once(repo, &tag).await {
            Ok(index) if index.is_index() && index.digest() != *subject => index.child_manifests(),
            Ok(_) => Ok(Vec::new()),
            Err(Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gcr_manifest_map() {
        let d1 = Digest::of(b"one");
        let d2 = Digest::of(b"two");
        let body = format!(
            r#"{{"child":[],"manifest":{{
              "{d1}":{{"imageSizeBytes":"10","layerId":"","mediaType":"{}","tag":["v1","latest"],"timeCreatedMs":"0","timeUploadedMs":"1"}},
              "{d2}":{{"imageSizeBytes":"10","layerId":"","mediaType":"{}","tag":[],"timeCreatedMs":"0","timeUploadedMs":"1"}}
            }},"name":"p/img","tags":["latest","v1"]}}"#,
            manifest::OCI_INDEX,
            manifest::DOCKER_MANIFEST
        );
        let mut tags = Tags {
            tags: Vec::new(),
            gcr: None,
        };
        let url = Url::parse("https://gcr.io/v2/p/img/tags/list").unwrap();
        merge_page(body.as_bytes(), &url, &mut tags).unwrap();
        let inventory = tags.gcr.unwrap();
        assert_eq!(inventory.digest_of_tag("v1"), Some(d1));
        assert_eq!(inventory.manifests[&d2].tags.len(), 0);
        assert_eq!(
            inventory.manifests[&d2].media_type.as_deref(),
            Some(manifest::DOCKER_MANIFEST)
        );
        assert_eq!(tags.tags, ["latest", "v1"]);
    }

    #[test]
    fn null_tags_are_an_empty_list() {
        let mut tags = Tags {
            tags: Vec::new(),
            gcr: None,
        };
        let url = Url::parse("http://127.0.0.1/v2/x/tags/list").unwrap();
        merge_page(br#"{"name":"x","tags":null}"#, &url, &mut tags).unwrap();
        assert!(tags.tags.is_empty());
        assert!(tags.gcr.is_none());
    }
}
