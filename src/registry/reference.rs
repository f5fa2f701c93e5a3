//! Names: repository paths ([`RepoName`]), tags, manifest references
//! ([`Reference`]: a tag or a digest) and image references ([`ImageRef`]:
//! `registry/repository`).
//!
//! Validation here follows the OCI distribution grammar, which is also what
//! keeps a repository name from escaping an image-layout directory: `..`,
//! empty components and absolute paths can never parse.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

/// A repository path inside a registry, such as `k8s-artifacts-prod/pause`.
///
/// Components are lowercase alphanumerics joined by `.`, `_`, `__` or runs
/// of `-`, separated by `/` (the OCI distribution `name` grammar).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

/// Why a string is not a repository name, tag, digest or image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNameError {
    /// Not a valid repository path.
    #[error(
        "invalid repository name {0:?}: use lowercase letters, digits and `._-` separators in \
         `/`-separated components (no `..`, no leading or trailing `/`)"
    )]
    Repository(String),
    /// Not a valid tag.
    #[error("invalid tag {0:?}: a tag matches `[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}`")]
    Tag(String),
    /// Not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {0:?}: expected `sha256:` followed by 64 lowercase hex digits")]
    Digest(String),
    /// Not `registry/repository`.
    #[error("invalid image reference {0:?}: expected `registry/repository`")]
    Image(String),
}

/// The longest repository name we accept, as distribution does.
const MAX_REPO_LEN: usize = 255;

impl RepoName {
    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components, each safe to use as a directory name.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// Why `component` is not one path component of the OCI distribution name
/// grammar, `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, in words a user can act
/// on. The one copy of this grammar: [`RepoName`] parses with it, and
/// `check` reports with it (rule M203, and the paths of M204).
///
/// # Errors
///
/// The reason, when `component` is not one.
pub fn check_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err(
            "it has an empty path component (`//`, or a leading or trailing `/`)".to_string(),
        );
    }
    if let Some(c) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(if c.is_ascii_uppercase() {
            "names must be lowercase".to_string()
        } else {
            format!("`{c}` is not allowed in a name (lowercase letters, digits, `.`, `_`, `-`)")
        });
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "`{component}` must start and end with a lowercase letter or digit"
        ));
    }
    // Separators: one `.`, one or two `_`, or any number of `-`, always
    // between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let valid = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(format!(
                "`{separator}` is not a valid separator in `{component}`"
            ));
        }
    }
    Ok(())
}

/// Why `path` is not `/`-separated [path components](check_component).
///
/// # Errors
///
/// The reason for the first component that is not one.
pub fn check_path(path: &str) -> Result<(), String> {
    path.split('/').try_for_each(check_component)
}

impl FromStr for RepoName {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<RepoName, ParseNameError> {
        if s.is_empty() || s.len() > MAX_REPO_LEN || check_path(s).is_err() {
            return Err(ParseNameError::Repository(s.chars().take(300).collect()));
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoName({:?})", self.0)
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Why `tag` is not a tag, `^\w[\w.-]{0,127}$` (ASCII `\w`, the OCI
/// distribution tag grammar), in words a user can act on. The one copy of
/// this grammar: [`validate_tag`] and `check` (rule M202) use it.
///
/// # Errors
///
/// The reason, when `tag` is not one.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    match chars.next() {
        None => return Err("the tag is empty".to_string()),
        Some(c) if !is_word(c) => {
            return Err(format!(
                "a tag must start with a letter, digit or `_`, not `{c}`"
            ));
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(is_word(*c) || *c == '.' || *c == '-')) {
        return Err(format!(
            "`{c}` is not allowed in a tag (letters, digits, `_`, `.`, `-`)"
        ));
    }
    if tag.len() > 128 {
        return Err(format!(
            "the tag has {} characters; at most 128 are allowed",
            tag.len()
        ));
    }
    Ok(())
}

/// Check a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` ([`check_tag`]).
///
/// # Errors
///
/// [`ParseNameError::Tag`] when it is not one.
pub fn validate_tag(tag: &str) -> Result<(), ParseNameError> {
    check_tag(tag).map_err(|_| ParseNameError::Tag(tag.chars().take(200).collect()))
}

/// What a manifest is addressed by: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reference {
    /// A mutable name, validated by [`validate_tag`].
    Tag(String),
    /// Content address.
    Digest(Digest),
}

impl Reference {
    /// A tag reference, validated.
    pub fn tag(tag: &str) -> Result<Reference, ParseNameError> {
        validate_tag(tag)?;
        Ok(Reference::Tag(tag.to_owned()))
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Reference {
        Reference::Digest(d)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An image without tag or digest: `registry/repository`, for example
/// `registry.k8s.io/pause` or `127.0.0.1:5000/a/b`. The registry is the first
/// `/`-separated component.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ImageRef {
    /// Host and optional port.
    pub registry: String,
    /// Repository path inside the registry.
    pub repository: RepoName,
}

impl FromStr for ImageRef {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<ImageRef, ParseNameError> {
        let (registry, repo) = s
            .split_once('/')
            .ok_or_else(|| ParseNameError::Image(s.to_owned()))?;
        let host_ok = !registry.is_empty()
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !host_ok {
            return Err(ParseNameError::Image(s.to_owned()));
        }
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository: repo.parse()?,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_distribution_names() {
        for ok in [
            "a",
            "pause",
            "k8s-artifacts-prod/pause",
            "a__b/c.d/e---f",
            "x_1",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_a_directory() {
        for bad in [
            "", "..", "a/../b", "/abs", "a/", "a//b", ".hidden", "A", "a/./b", "a\\b", "a b",
            "a..b", "a___b", "é", "a€b", "a-é",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(validate_tag("v1.2.3-rc.1_x").is_ok());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("").is_err());
        assert!(validate_tag("a/b").is_err());
    }

    #[test]
    fn image_refs_split_on_the_first_slash() {
        let r: ImageRef = "127.0.0.1:5000/a/b".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository.as_str(), "a/b");
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b");
        assert!("noslash".parse::<ImageRef>().is_err());
    }
}
