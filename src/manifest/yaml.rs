//! A YAML document as a tree of nodes that each know where they are.
//!
//! `serde-saphyr` parses and gives every value its line, column and byte
//! span (`Spanned<T>`). We deserialize into this small generic tree rather
//! than straight into the manifest structs, so that one unknown key or one
//! null `dmap` becomes one diagnostic and checking goes on, instead of the
//! first mistake aborting the whole file.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

/// Where a node starts in its file: 1-based line and character column, and
/// its byte range (used to read the raw text back, e.g. to see quoting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub byte_start: usize,
    pub byte_len: usize,
    /// Length in characters.
    pub char_len: u32,
}

impl Pos {
    fn from_location(location: &serde_saphyr::Location) -> Self {
        let span = location.span();
        Pos {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
            byte_start: span
                .byte_offset()
                .and_then(|o| usize::try_from(o).ok())
                .unwrap_or(0),
            byte_len: span
                .byte_len()
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(0),
            char_len: u32::try_from(span.len()).unwrap_or(u32::MAX),
        }
    }
}

/// One YAML value. Scalars keep their text as written for plain scalars
/// (so a tag `1.10` stays `1.10`, not the float 1.1), and the unescaped
/// text for quoted ones.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A value and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    /// A short name of the node's kind, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing (null)",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// A document that could not be parsed at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses one YAML document. Duplicate keys are kept (the manifest reader
/// reports them with both places). An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() || only_comments(text) {
        return Ok(Node {
            value: Value::Null,
            pos: Pos {
                line: 1,
                column: 1,
                ..Pos::default()
            },
        });
    }
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    // Manifests are plain data: no aliases are expected, and the default
    // budget's limits are far above the largest real manifest (3 MB).
    let parsed: Result<Spanned<RawNode>, _> = serde_saphyr::from_str_with_options(text, options);
    match parsed {
        Ok(spanned) => Ok(into_node(text, spanned)),
        Err(err) => {
            let (line, column) = err
                .location()
                .map(|l| {
                    (
                        u32::try_from(l.line()).unwrap_or(0),
                        u32::try_from(l.column()).unwrap_or(0),
                    )
                })
                .unwrap_or((0, 0));
            Err(SyntaxError {
                line,
                column,
                message: first_line_of(&err.to_string()),
            })
        }
    }
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

/// serde-saphyr's message can carry its own prefix and snippet; keep the
/// reason only, we render the position and the snippet ourselves.
fn first_line_of(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or("invalid YAML").trim();
    line = line.strip_prefix("error: ").unwrap_or(line);
    // "line 10 column 7: reason" -> "reason".
    if line.starts_with("line ") {
        if let Some((_, reason)) = line.split_once(": ") {
            line = reason;
        }
    }
    // "reason at line X column Y" -> "reason".
    match line.find(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

/// The tree as serde hands it over: values with spans, scalars not yet
/// matched with their raw text.
enum RawValue {
    Null,
    Str(String),
    /// A number or boolean: its text comes from the source.
    Plain,
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

struct RawNode(RawValue);

fn into_node(text: &str, spanned: Spanned<RawNode>) -> Node {
    let pos = Pos::from_location(&spanned.referenced);
    let value = match spanned.value.0 {
        RawValue::Null => Value::Null,
        RawValue::Str(s) => Value::Scalar(s),
        RawValue::Plain => Value::Scalar(
            text.get(pos.byte_start..pos.byte_start + pos.byte_len)
                .unwrap_or_default()
                .to_string(),
        ),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(|n| into_node(text, n)).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (into_node(text, k), into_node(text, v)))
                .collect(),
        ),
    };
    Node { value, pos }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Str(v)))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Plain))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode(RawValue::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode(RawValue::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Spanned<RawNode>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode(RawValue::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_and_raw_plain_scalars() {
        let text = "a: 1.10\nb:\n  - \"x\"\n  - true\nc:\n";
        let root = parse(text).unwrap();
        let m = map(&root);
        assert_eq!(m[0].0.as_str(), Some("a"));
        assert_eq!(m[0].1.as_str(), Some("1.10"));
        assert_eq!((m[0].1.pos.line, m[0].1.pos.column), (1, 4));
        let Value::Seq(items) = &m[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].as_str(), Some("x"));
        assert_eq!((items[0].pos.line, items[0].pos.column), (3, 5));
        assert_eq!(&text[items[0].pos.byte_start..][..1], "\"");
        assert_eq!(items[1].as_str(), Some("true"));
        assert_eq!(m[2].1.value, Value::Null);
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let root = parse("k: 1\nk: 2\n").unwrap();
        let m = map(&root);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].0.pos.line, 2);
    }

    #[test]
    fn crlf_positions() {
        let root = parse("a: x\r\nb: y\r\n").unwrap();
        let m = map(&root);
        assert_eq!((m[1].1.pos.line, m[1].1.pos.column), (2, 4));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a:\n  - x\n - y\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        assert!(!err.message.contains("line "), "{err:?}");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("# nothing\n").unwrap().value, Value::Null);
    }
}
