//! Property tests of the manifest parser: whatever bytes a pull request puts
//! in a manifest, parsing never panics, and every diagnostic points at a
//! line that exists in the file (or at the whole file).
//!
//! Two kinds of input: arbitrary bytes, and a real corpus file with random
//! edits (byte ranges deleted, inserted or replaced; lines re-indented), which
//! reaches far deeper into the readers than random bytes do.

use std::sync::Arc;

use promoter::diagnostic::Diagnostic;
use promoter::manifest::{read, yaml};
use proptest::prelude::*;
use proptest::sample::Index;

const IMAGES: &str =
    include_str!("data/k8s-io/registry.k8s.io/images/k8s-staging-kueue/images.yaml");
const MANIFEST: &str =
    include_str!("data/k8s-io/registry.k8s.io/manifests/k8s-staging-kueue/promoter-manifest.yaml");

/// The highest line a location may name: the number of lines, plus one for
/// an error reported just past the end of the file. A lone `\r` is a line
/// break to YAML, so it counts as one here too.
fn max_line(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut lines = 1u32;
    for (i, &b) in bytes.iter().enumerate() {
        let is_break = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if is_break {
            lines += 1;
        }
    }
    lines + 1
}

/// Checks one diagnostic's primary and related locations.
fn check_locations(text: &str, d: &Diagnostic) -> Result<(), TestCaseError> {
    let max = max_line(text);
    let locations = d
        .location
        .iter()
        .chain(d.related.iter().map(|r| &r.location));
    for loc in locations {
        prop_assert!(
            loc.line <= max,
            "{:?} {} at line {} but the file has at most {} lines: {}",
            d.code,
            d.message,
            loc.line,
            max,
            loc
        );
        if loc.has_line() {
            prop_assert!(loc.column >= 1, "column 0 on a line: {loc} ({})", d.message);
        }
    }
    Ok(())
}

/// Checks every node of a parsed tree: its line exists and its byte span
/// lies inside the text.
fn check_tree(text: &str, node: &yaml::Node) -> Result<(), TestCaseError> {
    let max = max_line(text);
    prop_assert!(
        node.pos.line <= max,
        "node at line {} > {}",
        node.pos.line,
        max
    );
    prop_assert!(
        node.pos.byte_start.saturating_add(node.pos.byte_len) <= text.len(),
        "node span {}+{} past the end ({} bytes)",
        node.pos.byte_start,
        node.pos.byte_len,
        text.len()
    );
    match &node.value {
        yaml::Value::Seq(items) => {
            for item in items {
                check_tree(text, item)?;
            }
        }
        yaml::Value::Map(entries) => {
            for (k, v) in entries {
                check_tree(text, k)?;
                check_tree(text, v)?;
            }
        }
        yaml::Value::Null | yaml::Value::Scalar(_) => {}
    }
    Ok(())
}

/// Runs the YAML parser and all three readers on `text`. A panic fails the
/// test case (proptest catches it and shrinks the input).
fn parse_everything(text: &str) -> Result<(), TestCaseError> {
    if let Ok(root) = yaml::parse(text) {
        check_tree(text, &root)?;
    }
    let file: Arc<str> = Arc::from("images.yaml");
    let mut diagnostics = Vec::new();
    read::plain(file.clone(), text, &mut diagnostics);
    read::thin_manifest(file.clone(), text, &mut diagnostics);
    read::thin_images(file, text, &mut diagnostics);
    for d in &diagnostics {
        check_locations(text, d)?;
    }
    Ok(())
}

/// One random edit of a file.
#[derive(Clone, Debug)]
enum Edit {
    Delete {
        at: Index,
        len: usize,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Replace {
        at: Index,
        len: usize,
        bytes: Vec<u8>,
    },
    /// Adds (positive) or removes (negative) leading spaces of one line.
    Indent {
        line: Index,
        delta: i8,
    },
}

/// Bytes that matter to YAML, so that insertions often change the structure
/// rather than only the text of a scalar.
fn yamlish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let significant = prop::sample::select(b" \n\r\t:-#\"'[]{},&*!|>?%@`\\".to_vec());
    prop_oneof![
        prop::collection::vec(significant, 1..8),
        prop::collection::vec(any::<u8>(), 1..8),
        Just(b"\n- name: x\n  dmap:\n".to_vec()),
        Just(b"\"sha256:".to_vec()),
        Just(b"\xef\xbb\xbf".to_vec()), // a byte-order mark
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 1usize..64).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<Index>(), yamlish_bytes()).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<Index>(), 1usize..16, yamlish_bytes()).prop_map(|(at, len, bytes)| Edit::Replace {
            at,
            len,
            bytes
        }),
        (any::<Index>(), -4i8..=4).prop_map(|(line, delta)| Edit::Indent { line, delta }),
    ]
}

fn apply(text: &mut Vec<u8>, edit: &Edit) {
    // `Index::index(n)` needs n > 0; position `len` (the end) is allowed.
    let pos = |at: &Index, text: &Vec<u8>| at.index(text.len() + 1);
    match edit {
        Edit::Delete { at, len } => {
            let start = pos(at, text);
            let end = (start + len).min(text.len());
            text.drain(start..end);
        }
        Edit::Insert { at, bytes } => {
            let start = pos(at, text);
            text.splice(start..start, bytes.iter().copied());
        }
        Edit::Replace { at, len, bytes } => {
            let start = pos(at, text);
            let end = (start + len).min(text.len());
            text.splice(start..end, bytes.iter().copied());
        }
        Edit::Indent { line, delta } => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    text.iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .filter(|&i| i <= text.len())
                .collect();
            let start = starts[line.index(starts.len())];
            if *delta >= 0 {
                let spaces = std::iter::repeat_n(b' ', delta.unsigned_abs() as usize);
                text.splice(start..start, spaces);
            } else {
                let mut end = start;
                while end < text.len()
                    && text[end] == b' '
                    && end - start < delta.unsigned_abs() as usize
                {
                    end += 1;
                }
                text.drain(start..end);
            }
        }
    }
}

fn mutated(original: &str, edits: &[Edit]) -> String {
    let mut bytes = original.as_bytes().to_vec();
    for e in edits {
        apply(&mut bytes, e);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_yamlish_text_never_panics(
        chunks in prop::collection::vec(yamlish_bytes(), 0..40)
    ) {
        let bytes: Vec<u8> = chunks.concat();
        parse_everything(&String::from_utf8_lossy(&bytes))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn edited_images_file_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        parse_everything(&mutated(IMAGES, &edits))?;
    }

    #[test]
    fn edited_manifest_file_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        parse_everything(&mutated(MANIFEST, &edits))?;
    }

    #[test]
    fn edited_file_with_crlf_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        parse_everything(&mutated(&IMAGES.replace('\n', "\r\n"), &edits))?;
    }
}

/// The checks themselves must be able to fail: a location past the end is
/// caught, one on the last line plus one is accepted.
#[test]
fn location_check_rejects_a_line_past_the_end() {
    use promoter::diagnostic::{Code, Location};
    let text = "a: 1\nb: 2\n";
    let at = |line| Location {
        file: Arc::from("f.yaml"),
        line,
        column: 1,
        length: 1,
    };
    let code = Code::YamlSyntax;
    assert!(check_locations(text, &Diagnostic::new(code, Some(at(4)), "x")).is_ok());
    assert!(check_locations(text, &Diagnostic::new(code, Some(at(5)), "x")).is_err());
    assert_eq!(max_line("a\rb\r\nc"), 4);
}

/// The unedited files parse cleanly, so the edits are what the properties
/// exercise.
#[test]
fn unedited_corpus_files_read_without_errors() {
    let mut diagnostics = Vec::new();
    assert!(read::thin_images(Arc::from("images.yaml"), IMAGES, &mut diagnostics).is_some());
    let manifest = read::thin_manifest(Arc::from("m.yaml"), MANIFEST, &mut diagnostics);
    assert!(manifest.is_some());
    let codes: Vec<_> = diagnostics.iter().map(|d| d.code).collect();
    // The manifest carries the deprecated `imagesPath` key: one warning.
    assert_eq!(codes.len(), 1, "{diagnostics:?}");
}
