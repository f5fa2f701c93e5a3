//! Reading what a repository holds over HTTP: `tags/list` with `Link`
//! pagination and `"tags": null`, the Artifact Registry / GCR `manifest`
//! extension (digest -> tags and media type in the same response), the
//! fallback of one HEAD per tag, and referrers (API, then the `sha256-<hex>`
//! tag schema; a host found without the API is asked for the tag only).

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::ACCEPT;
use reqwest::{Method, Response};
use serde::Deserialize;
use url::Url;

use super::{HttpRegistry, headers, scope, transport};
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

/// Most pages we follow: 1,000 pages of 1,000 tags is a million tags, ten
/// times the largest repository of registry.k8s.io's manifests. A `Link`
/// that points back at a page already read is a loop and fails at once;
/// this bounds a registry that invents new URLs forever.
const MAX_PAGES: usize = 1_000;

/// Most tags we keep from one listing, whatever the pages say: a million
/// tags are about 60 MB in memory.
const MAX_TAGS: usize = 1_000_000;

/// Most tags, digests of the GCR map, or tags of one digest in one page:
/// Artifact Registry caps a page at 10,000; ten times that leaves room and
/// keeps a page of one-letter tags (32 MiB of them would be 8 million
/// strings, 450 MB) from exhausting memory while it is parsed.
const MAX_PER_PAGE: usize = 100_000;

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Bounded<String>>,
    /// Artifact Registry / GCR extension.
    #[serde(default)]
    manifest: Option<BoundedMap<GcrManifest>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcrManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    tag: Bounded<String>,
}

/// A JSON array of at most [`MAX_PER_PAGE`] items: the parse fails at the
/// next one, before it is built.
#[derive(Default)]
struct Bounded<T>(Vec<T>);

/// A JSON object of at most [`MAX_PER_PAGE`] members, in order.
struct BoundedMap<V>(Vec<(String, V)>);

/// What `next` yields until it ends, failing at the first element past
/// [`MAX_PER_PAGE`] (`what` names the elements).
fn at_most_a_page<T, E: serde::de::Error>(
    mut next: impl FnMut() -> std::result::Result<Option<T>, E>,
    what: &str,
) -> std::result::Result<Vec<T>, E> {
    let mut all = Vec::new();
    while let Some(one) = next()? {
        if all.len() == MAX_PER_PAGE {
            return Err(E::custom(format!(
                "more than {MAX_PER_PAGE} {what} in one page"
            )));
        }
        all.push(one);
    }
    Ok(all)
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Items<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Items<T> {
            type Value = Bounded<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_PER_PAGE} items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Bounded<T>, A::Error> {
                at_most_a_page(|| seq.next_element(), "items").map(Bounded)
            }
        }
        d.deserialize_seq(Items(std::marker::PhantomData))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for BoundedMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Members<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Members<V> {
            type Value = BoundedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an object of at most {MAX_PER_PAGE} members")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<BoundedMap<V>, A::Error> {
                at_most_a_page(|| map.next_entry(), "digests").map(BoundedMap)
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// Every page of `tags/list`, merged.
pub(super) struct Tags {
    pub tags: Vec<String>,
    /// The GCR `manifest` map, when the registry sent one.
    pub gcr: Option<Inventory>,
}

/// The `rel="next"` target of a `Link` header.
fn next_link(response: &Response) -> Option<String> {
    headers::next_link(transport::header_str(response, "link")?)
}

/// Parse one `tags/list` page into `tags` (and `gcr`).
fn merge_page(body: &[u8], url: &Url, tags: &mut Tags) -> Result<()> {
    let page: TagsPage = serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        url: url.to_string(),
        reason: format!("not a tags list: {e}"),
    })?;
    tags.tags.extend(page.tags.unwrap_or_default().0);
    if let Some(map) = page.manifest {
        let inventory = tags.gcr.get_or_insert_with(Inventory::default);
        for (digest, entry) in map.0 {
            let digest: Digest = digest.parse().map_err(|e| Error::InvalidResponse {
                url: url.to_string(),
                reason: format!("manifest map: {e}"),
            })?;
            let slot = inventory.manifests.entry(digest).or_default();
            slot.media_type = entry.media_type.or(slot.media_type.take());
            slot.tags.extend(entry.tag.0);
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
        // The first request to a host may be its ping (`GET /v2/`), which a
        // throttling registry answers 429 like any other (ECR): retried.
        let first = format!("tags/list?n={page_size}");
        let mut url = self.retrying("GET /v2/", || self.url(repo, &first)).await?;
        let mut seen = std::collections::HashSet::from([url.clone()]);
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
            if tags.tags.len() > MAX_TAGS {
                return Err(self.listing_error(&url, format!("more than {MAX_TAGS} tags")));
            }
            let Some(next) = next else {
                return Ok(tags);
            };
            let next_url = headers::location(&url, &next)
                .map_err(|e| self.listing_error(&url, format!("bad Link header: {e}")))?;
            if !seen.insert(next_url.clone()) {
                return Err(self.listing_error(
                    &url,
                    format!(
                        "its `Link: <{}>; rel=\"next\"` points back at a page already read (a loop)",
                        headers::quote(&next, 200)
                    ),
                ));
            }
            url = next_url;
        }
        Err(self.listing_error(&url, format!("more than {MAX_PAGES} pages of tags")))
    }

    /// The error of a listing the registry made impossible to finish.
    fn listing_error(&self, url: &Url, what: String) -> Error {
        Error::InvalidResponse {
            url: url.to_string(),
            reason: format!(
                "tags/list of {}: {what}; promoter gave up on this listing (other registries are not affected)",
                self.state.host
            ),
        }
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
        let body = transport::read_body(&Method::GET, response, transport::TAGS_PAGE_BODY).await?;
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
                let body = transport::error_body(response).await;
                if !String::from_utf8_lossy(&body).contains("\"errors\"") {
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

    #[test]
    fn a_page_of_too_many_tags_is_refused_while_parsed() {
        let mut tags = Tags {
            tags: Vec::new(),
            gcr: None,
        };
        let url = Url::parse("http://127.0.0.1/v2/x/tags/list").unwrap();
        let body = format!(r#"{{"tags":[{}"a"]}}"#, r#""a","#.repeat(MAX_PER_PAGE));
        let err = merge_page(body.as_bytes(), &url, &mut tags).unwrap_err();
        assert!(err.to_string().contains("more than 100000 items"), "{err}");
        let body = format!(r#"{{"tags":[{}"a"]}}"#, r#""a","#.repeat(MAX_PER_PAGE - 1));
        merge_page(body.as_bytes(), &url, &mut tags).unwrap();
        assert_eq!(tags.tags.len(), MAX_PER_PAGE);
    }

    mod props {
        //! Any `tags/list` page and any referrers index: parsed or refused,
        //! never a panic, in bounded time.
        use std::time::{Duration, Instant};

        use proptest::prelude::*;

        use super::*;

        /// JSON-ish text from the tokens these bodies are made of.
        fn jsonish() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    Just("{".to_owned()),
                    Just("}".to_owned()),
                    Just("[".to_owned()),
                    Just("]".to_owned()),
                    Just(",".to_owned()),
                    Just(":".to_owned()),
                    Just("null".to_owned()),
                    Just("\"tags\"".to_owned()),
                    Just("\"manifest\"".to_owned()),
                    Just("\"tag\"".to_owned()),
                    Just("\"mediaType\"".to_owned()),
                    Just("\"manifests\"".to_owned()),
                    Just("\"digest\"".to_owned()),
                    Just("\"size\"".to_owned()),
                    Just("\"schemaVersion\":2".to_owned()),
                    Just(format!("\"{}\"", Digest::of(b"x"))),
                    "\"[a-z0-9.:/+-]{0,20}\"",
                    "-?[0-9]{1,25}",
                ],
                0..60,
            )
            .prop_map(|parts| parts.concat())
        }

        fn check(body: &[u8]) {
            let started = Instant::now();
            let url = Url::parse("http://127.0.0.1/v2/x/tags/list").unwrap();
            let mut tags = Tags {
                tags: Vec::new(),
                gcr: None,
            };
            let _ = merge_page(body, &url, &mut tags);
            if let Ok(index) =
                Manifest::new(Some(manifest::OCI_INDEX), Bytes::copy_from_slice(body))
            {
                let _ = index.child_manifests();
            }
            assert!(started.elapsed() < Duration::from_secs(1));
        }

        proptest! {
            #[test]
            fn any_bytes(body in prop::collection::vec(any::<u8>(), 0..4096)) {
                check(&body);
            }

            #[test]
            fn json_like_text(body in jsonish()) {
                check(body.as_bytes());
            }

            #[test]
            fn pages_shaped_like_real_ones(
                tags in prop::collection::vec("[a-zA-Z0-9._-]{0,40}", 0..50),
                digest in "[a-z0-9:]{0,80}",
            ) {
                let list: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
                let body = format!(
                    r#"{{"name":"x","tags":[{}],"manifest":{{"{digest}":{{"mediaType":"m","tag":[{}]}}}}}}"#,
                    list.join(","),
                    list.join(",")
                );
                check(body.as_bytes());
            }
        }
    }
}
