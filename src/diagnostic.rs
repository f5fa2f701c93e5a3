//! Diagnostics as data: what is wrong, where, how bad, and what to do.
//!
//! A mistake in a manifest is a [`Diagnostic`], never an `Err`: the checker
//! collects them all and the reporters (`crate::report`) render them. This
//! module does no I/O and never prints.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered from most to least severe, so sorting a
/// list of diagnostics by severity puts errors first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the promotion; `check` exits 1.
    Error,
    /// Worth fixing; `check` still exits 0.
    Warning,
    /// Information only.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $severity:ident; )*) => {
        /// Every rule the checker knows. The code string (`M201`) and the
        /// name (`invalid-digest`) are stable: users filter on them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// All codes, in code order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable short code, e.g. `M201`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The stable kebab-case name, e.g. `invalid-digest`.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The severity this rule reports at.
            pub fn default_severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }
        }
    };
}

codes! {
    // M0xx: reading files.
    /// A manifest file or directory could not be read.
    Io = "M001", "io-error", Error;
    /// The file is not valid YAML, or a value has the wrong shape.
    YamlSyntax = "M002", "yaml-syntax", Error;
    /// A key the kpromo schema does not have (often a misspelling).
    UnknownKey = "M003", "unknown-key", Error;
    /// The same key twice in one mapping (e.g. a digest twice in a dmap).
    DuplicateKey = "M004", "duplicate-key", Error;

    // M1xx: structure.
    /// Not exactly one registry is marked `src: true`.
    SourceRegistry = "M101", "source-registry", Error;
    /// `registries:` is missing or empty, or has no destination.
    EmptyRegistries = "M102", "empty-registries", Error;
    /// An image or registry `name` is missing or empty.
    EmptyName = "M103", "empty-name", Error;
    /// A `dmap` is missing, null or empty.
    EmptyDmap = "M104", "empty-dmap", Error;
    /// A thin-manifest project has a manifest but no images file.
    MissingImagesFile = "M105", "missing-images-file", Error;
    /// A thin-manifest project has an images file but no manifest.
    OrphanImagesFile = "M106", "orphan-images-file", Error;
    /// A file or directory the thin layout does not expect.
    UnexpectedFile = "M107", "unexpected-file", Warning;
    /// The deprecated `imagesPath` key: accepted and ignored.
    DeprecatedKey = "M108", "deprecated-key", Warning;
    /// A `promoter-manifest.yaml` below `manifests/<project>/`: kpromo
    /// refuses the tree, and it would never be promoted.
    NestedManifest = "M109", "nested-manifest", Error;

    // M2xx: syntax of values.
    /// A digest that is not `sha256:` and 64 lowercase hex characters.
    InvalidDigest = "M201", "invalid-digest", Error;
    /// A tag outside `^\w[\w.-]{0,127}$`.
    InvalidTag = "M202", "invalid-tag", Error;
    /// An image name outside the OCI distribution grammar.
    InvalidImageName = "M203", "invalid-image-name", Error;
    /// A registry name that is not `host[:port][/path]`.
    InvalidRegistryName = "M204", "invalid-registry-name", Error;

    // M3xx: conflicts over the whole tree.
    /// One destination tag claimed by two different digests.
    TagConflict = "M301", "tag-conflict", Error;
    /// The same tag twice in one tag list.
    DuplicateTag = "M302", "duplicate-tag", Warning;
    /// The same digest listed under the same image name in two entries.
    DuplicateDigest = "M303", "duplicate-digest", Warning;

    // M4xx: against the base revision.
    /// A digest or tag present in the base is gone.
    Removal = "M401", "removal", Error;
    /// A tag now points at a different digest than in the base.
    TagMove = "M402", "tag-move", Error;
    /// The base comparison could not run because head files are unreadable.
    BaseSkipped = "M403", "base-skipped", Note;

    // P1xx: promotion, against what the registries hold.
    /// A destination tag already points at another digest: never moved.
    RegistryTagMove = "P101", "registry-tag-move", Error;
    /// The source registry does not have the digest to promote.
    SourceMissing = "P102", "source-missing", Error;
    /// Copying an image to a destination failed.
    CopyFailed = "P103", "copy-failed", Error;
    /// The staging image's signature is invalid (or, when required, absent).
    SourceSignature = "P104", "source-signature", Error;
    /// The staging image's SLSA provenance does not verify or names a
    /// builder not allowed (or, when required, is absent).
    SourceProvenance = "P105", "source-provenance", Error;

    // M5xx: style.
    /// Image entries are not sorted by name.
    UnsortedImages = "M501", "unsorted-images", Warning;
    /// Digests in a dmap are not sorted.
    UnsortedDigests = "M502", "unsorted-digests", Warning;
    /// A digest key without quotes.
    UnquotedDigest = "M503", "unquoted-digest", Warning;
    /// The file uses CRLF line endings.
    CrlfLineEndings = "M504", "crlf-line-endings", Warning;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Code {
    type Err = String;

    /// Accepts the code (`M201`) or the name (`invalid-digest`), and a code
    /// prefix such as `M5` selects nothing here (see `CodeFilter`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s) || c.name() == s)
            .ok_or_else(|| format!("unknown rule `{s}`; run `promoter rules` to list them"))
    }
}

/// A place in a source file. Lines and columns are 1-based and count
/// characters, as editors and GitHub annotations do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The file, as the user named it (relative to where they pointed us).
    pub file: Arc<str>,
    /// 1-based line.
    #[serde(default)]
    pub line: u32,
    /// 1-based column of the first character.
    #[serde(default)]
    pub column: u32,
    /// Number of characters the span covers on that line (at least 1 when
    /// the span is known; 0 for "the whole file").
    #[serde(default)]
    pub length: u32,
}

impl Location {
    /// A location that names only a file (no line), e.g. a missing file.
    pub fn file(file: Arc<str>) -> Self {
        Location {
            file,
            line: 0,
            column: 0,
            length: 0,
        }
    }

    /// True when the location points at a line.
    pub fn has_line(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_line() {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        } else {
            f.write_str(&self.file)
        }
    }
}

/// A secondary place that explains the primary one ("first claimed here").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Related {
    pub location: Location,
    pub message: String,
}

/// One finding. Serialized as reports carry it (`--format json`, the run
/// report) and read back from them (`report merge`, the action).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// What is wrong, in one sentence, naming the offending value.
    pub message: String,
    /// What to do about it.
    #[serde(default)]
    pub help: Option<String>,
    /// Where. `None` only for findings about the run as a whole.
    #[serde(default)]
    pub location: Option<Location>,
    /// Other places involved (e.g. the first claim of a conflicting tag).
    #[serde(default)]
    pub related: Vec<Related>,
}

impl Diagnostic {
    /// A diagnostic at the rule's default severity.
    pub fn new(code: Code, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.default_severity(),
            message: message.into(),
            help: None,
            location,
            related: Vec::new(),
        }
    }

    /// Adds the help line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related location.
    #[must_use]
    pub fn related(mut self, location: Location, message: impl Into<String>) -> Self {
        self.related.push(Related {
            location,
            message: message.into(),
        });
        self
    }

    /// The order reporters use: most severe first, then by file and line.
    pub fn sort_key(&self) -> (Severity, Option<&Location>, Code) {
        (self.severity, self.location.as_ref(), self.code)
    }
}

/// Sorts diagnostics most severe first, then by place, then by code.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// The text of every file the checker read, so that reporters can show the
/// offending line. Keyed by the same display path as [`Location::file`].
#[derive(Default, Debug, Clone)]
pub struct Sources {
    files: HashMap<Arc<str>, Arc<str>>,
}

impl Sources {
    /// Remembers a file's text.
    pub fn insert(&mut self, file: Arc<str>, text: Arc<str>) {
        self.files.insert(file, text);
    }

    /// Takes in every file of `other`.
    pub fn extend(&mut self, other: Sources) {
        self.files.extend(other.files);
    }

    /// The text of 1-based line `line` of `file`, without its line ending.
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let text = self.files.get(file)?;
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        text.split('\n')
            .nth(index)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Counts per severity, for summaries and exit codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
}

impl SeverityCounts {
    /// Counts the diagnostics by severity.
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        let mut counts = SeverityCounts::default();
        for d in diagnostics {
            match d.severity {
                Severity::Error => counts.errors += 1,
                Severity::Warning => counts.warnings += 1,
                Severity::Note => counts.notes += 1,
            }
        }
        counts
    }
}

/// How a command ended; `main` maps it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No errors (warnings allowed).
    Clean,
    /// At least one error-level finding.
    Findings,
}

impl Outcome {
    /// `Findings` when any of `diagnostics` is an error.
    pub fn of(diagnostics: &[Diagnostic]) -> Outcome {
        if SeverityCounts::of(diagnostics).errors > 0 {
            Outcome::Findings
        } else {
            Outcome::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert!(seen.insert(code.name()), "duplicate name {}", code.name());
            assert_eq!(code.as_str().parse::<Code>(), Ok(*code));
            assert_eq!(code.name().parse::<Code>(), Ok(*code));
        }
        assert!("M999".parse::<Code>().is_err());
    }

    #[test]
    fn sources_strip_crlf() {
        let mut sources = Sources::default();
        sources.insert("a.yaml".into(), "one\r\ntwo\r\n".into());
        assert_eq!(sources.line("a.yaml", 2), Some("two"));
        assert_eq!(sources.line("a.yaml", 0), None);
        assert_eq!(sources.line("b.yaml", 1), None);
    }

    #[test]
    fn errors_sort_first() {
        let w = Diagnostic::new(Code::UnquotedDigest, None, "w");
        let e = Diagnostic::new(Code::InvalidDigest, None, "e");
        let mut all = vec![w, e];
        sort(&mut all);
        assert_eq!(all[0].severity, Severity::Error);
    }
}
