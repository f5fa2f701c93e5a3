//! Turns parsed YAML trees into the manifest model, reporting shape problems
//! (syntax, wrong types, unknown and duplicate keys) as diagnostics and
//! carrying on, so that one file yields every problem it has.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use super::model::{DigestEntry, Image, Located, Manifest, Registry};
use super::yaml::{self, Node, Pos, Value};
use crate::diagnostic::{Code, Diagnostic, Location};

/// Keys of a plain manifest's top level.
const PLAIN_KEYS: &[&str] = &["registries", "images"];
/// Keys of a thin `promoter-manifest.yaml`; `imagesPath` is deprecated.
const THIN_MANIFEST_KEYS: &[&str] = &["registries", "imagesPath"];
const REGISTRY_KEYS: &[&str] = &["name", "src", "service-account"];
const IMAGE_KEYS: &[&str] = &["name", "dmap"];

/// Reads one file's text into diagnostics and a model, for one file.
struct FileReader<'a> {
    file: Arc<str>,
    text: &'a str,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl FileReader<'_> {
    fn at(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            length: pos.char_len.max(1),
        }
    }

    fn file_location(&self) -> Location {
        Location::file(self.file.clone())
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Parses the text; a syntax error becomes a diagnostic.
    fn parse(&mut self) -> Option<Node> {
        if self.text.contains("\r\n") {
            let d = Diagnostic::new(
                Code::CrlfLineEndings,
                Some(self.file_location()),
                "file uses CRLF (Windows) line endings",
            )
            .help("convert it to LF line endings, e.g. with `dos2unix`, so diffs stay clean");
            self.report(d);
        }
        match yaml::parse(self.text) {
            Ok(node) => Some(node),
            Err(err) => {
                let location = Location {
                    file: self.file.clone(),
                    line: err.line,
                    column: err.column,
                    length: 1,
                };
                let d = Diagnostic::new(
                    Code::YamlSyntax,
                    Some(location),
                    format!("invalid YAML: {}", err.message),
                )
                .help("check the indentation and quoting of this line and the lines just above it; entries of one mapping or list must line up");
                self.report(d);
                None
            }
        }
    }

    /// Reports a node of the wrong kind.
    fn expected(&mut self, node: &Node, what: &str, context: &str) {
        let d = Diagnostic::new(
            Code::YamlSyntax,
            Some(self.at(node.pos)),
            format!("{context}: expected {what}, found {}", node.kind()),
        )
        .help("see the kpromo manifest format in the README");
        self.report(d);
    }

    /// The entries of a mapping whose keys must come from `allowed`. Unknown
    /// and repeated keys are reported at the key; the first of each key wins.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        context: &str,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, "a mapping", context);
            return None;
        };
        let mut fields: Vec<(&str, &Node, &Node)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.expected(key, "a key name", context);
                continue;
            };
            if !allowed.contains(&name) {
                let mut d = Diagnostic::new(
                    Code::UnknownKey,
                    Some(self.at(key.pos)),
                    format!("unknown key `{name}` in {context}"),
                );
                d = match closest(name, allowed) {
                    Some(known) => d.help(format!("did you mean `{known}`?")),
                    None => d.help(format!("the keys allowed here are: {}", allowed.join(", "))),
                };
                self.report(d);
                continue;
            }
            if let Some((_, first, _)) = fields.iter().find(|(n, _, _)| *n == name) {
                let first_at = self.at(first.pos);
                let d = Diagnostic::new(
                    Code::DuplicateKey,
                    Some(self.at(key.pos)),
                    format!("key `{name}` appears twice in {context}"),
                )
                .help("remove one of them; only the first is used")
                .related(first_at, "first given here");
                self.report(d);
                continue;
            }
            fields.push((name, key, value));
        }
        Some(fields)
    }

    /// A scalar string value, or a diagnostic.
    fn string(&mut self, node: &Node, context: &str) -> Option<Located<String>> {
        match &node.value {
            Value::Scalar(s) => Some(Located {
                value: s.clone(),
                at: self.at(node.pos),
            }),
            Value::Null => Some(Located {
                value: String::new(),
                at: self.at(node.pos),
            }),
            _ => {
                self.expected(node, "a string", context);
                None
            }
        }
    }

    fn registries(&mut self, node: &Node) -> Vec<Registry> {
        let items = match &node.value {
            Value::Seq(items) => items,
            Value::Null => return Vec::new(),
            _ => {
                self.expected(node, "a list of registries", "`registries`");
                return Vec::new();
            }
        };
        let mut registries = Vec::with_capacity(items.len());
        for item in items {
            let Some(fields) = self.fields(item, REGISTRY_KEYS, "a registry entry") else {
                continue;
            };
            let mut registry = Registry {
                name: None,
                src: false,
                at: self.at(item.pos),
            };
            for (key, _, value) in fields {
                match key {
                    "name" => registry.name = self.string(value, "registry `name`"),
                    "src" => registry.src = self.boolean(value, "`src`"),
                    _ => {} // service-account: used by kpromo for GCP auth only.
                }
            }
            registries.push(registry);
        }
        registries
    }

    fn boolean(&mut self, node: &Node, context: &str) -> bool {
        // YAML 1.1 booleans, as kpromo's Go YAML library reads them.
        match node.as_str() {
            Some("true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => true,
            Some("false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => false,
            _ if node.value == Value::Null => false,
            _ => {
                self.expected(node, "`true` or `false`", context);
                false
            }
        }
    }

    fn images(&mut self, node: &Node) -> Vec<Image> {
        let items = match &node.value {
            Value::Seq(items) => items,
            Value::Null => return Vec::new(),
            _ => {
                self.expected(node, "a list of images", "`images`");
                return Vec::new();
            }
        };
        let mut images = Vec::with_capacity(items.len());
        for item in items {
            let Some(fields) = self.fields(item, IMAGE_KEYS, "an image entry") else {
                continue;
            };
            let at = self.at(item.pos);
            let mut image = Image {
                name: None,
                dmap: None,
                dmap_at: at.clone(),
                at,
            };
            for (key, key_node, value) in fields {
                match key {
                    "name" => image.name = self.string(value, "image `name`"),
                    "dmap" => {
                        image.dmap_at = self.at(key_node.pos);
                        image.dmap = self.dmap(value);
                    }
                    _ => {} // `fields` returns only the keys listed as allowed.
                }
            }
            images.push(image);
        }
        images
    }

    fn dmap(&mut self, node: &Node) -> Option<Vec<DigestEntry>> {
        let entries = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => return None,
            _ => {
                self.expected(node, "a mapping of digests to tag lists", "`dmap`");
                return None;
            }
        };
        let mut digests: Vec<DigestEntry> = Vec::with_capacity(entries.len());
        // Digest -> index in `digests`; legacy dmaps hold thousands of keys.
        let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
        seen.reserve(entries.len());
        for (key, value) in entries {
            let Some(digest) = self.string(key, "a `dmap` digest") else {
                continue;
            };
            let raw = key.as_str().unwrap_or_default();
            if let Some(first) = seen.get(raw).map(|i| &digests[*i]) {
                let d = Diagnostic::new(
                    Code::DuplicateKey,
                    Some(digest.at.clone()),
                    format!("digest `{}` is listed twice in this dmap", digest.value),
                )
                .help("merge the two entries into one, with all the tags in one list")
                .related(first.digest.at.clone(), "first listed here");
                self.report(d);
                continue;
            }
            let quoted = matches!(
                self.text.as_bytes().get(key.pos.byte_start),
                Some(b'"' | b'\'')
            );
            let tags = self.tags(value);
            seen.insert(raw, digests.len());
            digests.push(DigestEntry {
                digest,
                quoted,
                tags,
            });
        }
        Some(digests)
    }

    fn tags(&mut self, node: &Node) -> Vec<Located<String>> {
        match &node.value {
            // `"sha256:...":` with no value: kpromo reads it as no tags.
            Value::Null => Vec::new(),
            Value::Seq(items) => items
                .iter()
                .filter_map(|t| match &t.value {
                    Value::Scalar(_) => self.string(t, "a tag"),
                    _ => {
                        self.expected(t, "a tag", "a tag list");
                        None
                    }
                })
                .collect(),
            _ => {
                self.expected(node, "a list of tags such as `[\"v1.0\"]`", "a dmap entry");
                Vec::new()
            }
        }
    }
}

/// Reads a plain manifest (`registries:` and `images:` in one file).
pub fn plain(file: Arc<str>, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Manifest> {
    let mut reader = FileReader {
        file: file.clone(),
        text,
        diagnostics,
    };
    let root = reader.parse()?;
    let fields = reader.fields(&root, PLAIN_KEYS, "a manifest")?;
    let mut manifest = Manifest {
        file: file.clone(),
        images_file: file,
        registries_at: reader.file_location(),
        registries: Vec::new(),
        images: Vec::new(),
    };
    for (key, key_node, value) in fields {
        match key {
            "registries" => {
                manifest.registries_at = reader.at(key_node.pos);
                manifest.registries = reader.registries(value);
            }
            "images" => manifest.images = reader.images(value),
            _ => {} // `fields` returns only the keys listed as allowed.
        }
    }
    Some(manifest)
}

/// What a thin `promoter-manifest.yaml` holds.
pub struct ThinManifest {
    pub registries_at: Location,
    pub registries: Vec<Registry>,
}

/// Reads a thin layout's `promoter-manifest.yaml` (registries only).
pub fn thin_manifest(
    file: Arc<str>,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ThinManifest> {
    let mut reader = FileReader {
        file,
        text,
        diagnostics,
    };
    let root = reader.parse()?;
    let fields = reader.fields(&root, THIN_MANIFEST_KEYS, "a promoter manifest")?;
    let mut manifest = ThinManifest {
        registries_at: reader.file_location(),
        registries: Vec::new(),
    };
    for (key, key_node, value) in fields {
        match key {
            "registries" => {
                manifest.registries_at = reader.at(key_node.pos);
                manifest.registries = reader.registries(value);
            }
            "imagesPath" => {
                let d = Diagnostic::new(
                    Code::DeprecatedKey,
                    Some(reader.at(key_node.pos)),
                    "`imagesPath` is deprecated and ignored",
                )
                .help("remove it: images are always read from `images/<project>/images.yaml`");
                reader.report(d);
            }
            _ => {} // `fields` returns only the keys listed as allowed.
        }
    }
    Some(manifest)
}

/// Reads a thin layout's `images.yaml` (a bare list of images); `None`
/// when the file is not YAML at all.
pub fn thin_images(
    file: Arc<str>,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Vec<Image>> {
    let mut reader = FileReader {
        file,
        text,
        diagnostics,
    };
    reader.parse().map(|root| reader.images(&root))
}

/// The allowed key closest to a misspelled one, if any is close.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|k| {
            (
                edit_distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance; keys are short, so the quadratic table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<Manifest>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let m = plain("m.yaml".into(), text, &mut diagnostics);
        (m, diagnostics)
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_registries_images_and_quoting() {
        let text = format!(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: r.example/prod\nimages:\n- name: app\n  dmap:\n    \"sha256:{HEX}\": [\"v1\", v1.0]\n    sha256:{HEX}x:\n    - a\n"
        );
        let (m, d) = read(&text);
        assert!(d.is_empty(), "{d:?}");
        let m = m.unwrap();
        assert_eq!(m.source(), Some("gcr.io/staging"));
        assert_eq!(m.destinations().count(), 1);
        let dmap = m.images[0].dmap.as_ref().unwrap();
        assert!(dmap[0].quoted);
        assert!(!dmap[1].quoted);
        assert_eq!(dmap[0].tags[1].value, "v1.0");
        assert_eq!(dmap[1].tags[0].at.line, 10);
        assert_eq!(dmap[0].digest.at.line, 8);
        assert_eq!(dmap[0].digest.at.column, 5);
    }

    #[test]
    fn misspelled_key_points_at_key_with_suggestion() {
        let (m, d) = read("registries: []\nimages:\n- name: a\n  dmpa: {}\n");
        assert!(m.is_some());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::UnknownKey);
        let at = d[0].location.as_ref().unwrap();
        assert_eq!((at.line, at.column), (4, 3));
        assert_eq!(d[0].help.as_deref(), Some("did you mean `dmap`?"));
    }

    #[test]
    fn duplicate_digest_points_at_second_with_first_related() {
        let text = format!(
            "images:\n- name: a\n  dmap:\n    \"sha256:{HEX}\": []\n    \"sha256:{HEX}\": [v2]\n"
        );
        let (_, d) = read(&text);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::DuplicateKey);
        assert_eq!(d[0].location.as_ref().unwrap().line, 5);
        assert_eq!(d[0].related[0].location.line, 4);
    }

    #[test]
    fn null_dmap_is_kept_as_none() {
        let (m, d) = read("images:\n- name: a\n  dmap:\n");
        assert!(d.is_empty());
        let image = &m.unwrap().images[0];
        assert_eq!(image.dmap, None);
        assert_eq!(image.dmap_at.line, 3);
    }

    #[test]
    fn wrong_shapes_are_reported_not_fatal() {
        let (m, d) = read("registries: nope\nimages:\n- name: [x]\n  dmap: {\"a\": 3}\n");
        assert!(m.is_some());
        let codes: Vec<Code> = d.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            vec![Code::YamlSyntax, Code::YamlSyntax, Code::YamlSyntax]
        );
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("dmpa", "dmap"), 2);
        assert_eq!(closest("registry", PLAIN_KEYS), Some("registries"));
        assert_eq!(closest("zzzzzz", PLAIN_KEYS), None);
    }
}
