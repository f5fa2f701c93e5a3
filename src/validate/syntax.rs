//! The grammar of single values: digests, tags, image and registry names.
//! Each check returns why a value is wrong, in words a user can act on.

/// `^sha256:[0-9a-f]{64}$`, as kpromo requires.
pub fn digest(value: &str) -> Result<(), String> {
    let Some(hex) = value.strip_prefix("sha256:") else {
        return Err(match value.split_once(':') {
            Some((algorithm, _)) => {
                format!("algorithm `{algorithm}` is not supported; only `sha256` is")
            }
            None => "a digest starts with `sha256:`".to_string(),
        });
    };
    // Fast path: almost every digest is well formed.
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(());
    }
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("`{c}` is not a hex digit"));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("hex digits must be lowercase".to_string());
    }
    if hex.len() != 64 {
        return Err(format!(
            "it has {} hex digits; a sha256 digest has 64",
            hex.len()
        ));
    }
    Ok(())
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `^\w[\w.-]{0,127}$` (ASCII `\w`), the OCI distribution tag grammar.
pub fn tag(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
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
    if value.len() > 128 {
        return Err(format!(
            "the tag has {} characters; at most 128 are allowed",
            value.len()
        ));
    }
    Ok(())
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn path_component(component: &str) -> Result<(), String> {
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
    // Separators: one `.`, one or two `_`, or any number of `-`.
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

/// An image name: `/`-separated path components.
pub fn image_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the name is empty".to_string());
    }
    value.split('/').try_for_each(path_component)
}

/// A registry name as kpromo writes it: `host[:port][/path...]`, or our
/// embedded OCI layout form `oci:<dir>`.
pub fn registry_name(value: &str) -> Result<(), String> {
    if let Some(dir) = value.strip_prefix("oci:") {
        return if dir.is_empty() {
            Err("`oci:` needs a directory, e.g. `oci:./registry`".to_string())
        } else {
            Ok(())
        };
    }
    if value.contains("://") {
        return Err("write the registry without a scheme, e.g. `gcr.io/project`".to_string());
    }
    let (host, path) = match value.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (value, None),
    };
    let (domain, port) = match host.rsplit_once(':') {
        Some((domain, port)) => (domain, Some(port)),
        None => (host, None),
    };
    if domain.is_empty() {
        return Err("the registry host is empty".to_string());
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("`{domain}` is not a valid host name"));
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5)
    {
        return Err(format!("`{port}` is not a valid port"));
    }
    match path {
        Some(path) => path.split('/').try_for_each(path_component),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digests() {
        assert!(digest(&format!("sha256:{HEX}")).is_ok());
        assert_eq!(
            digest(&format!("sha256:{}", &HEX[1..])).unwrap_err(),
            "it has 63 hex digits; a sha256 digest has 64"
        );
        assert!(
            digest(&format!("sha256:{}", HEX.to_uppercase()))
                .unwrap_err()
                .contains("lowercase")
        );
        assert!(
            digest(&format!("sha512:{HEX}"))
                .unwrap_err()
                .contains("sha512")
        );
        assert!(digest(HEX).is_err());
        assert!(
            digest(&format!("sha256:{}g", &HEX[1..]))
                .unwrap_err()
                .contains("`g`")
        );
    }

    #[test]
    fn tags() {
        for ok in ["v1", "v1.2.3-rc.1", "_x", "1", &"a".repeat(128)] {
            assert!(tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".v1", "-v1", "v1+build", "v 1", &"a".repeat(129), "ü"] {
            assert!(tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_names() {
        for ok in [
            "kueue",
            "a/b/c",
            "a__b",
            "a---b",
            "a.b_c-d",
            "e2e-test-httpbin",
        ] {
            assert!(image_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a-", "a_.b", "a:b",
        ] {
            assert!(image_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_names() {
        for ok in [
            "gcr.io/k8s-staging-kueue",
            "us-central1-docker.pkg.dev/k8s-artifacts-prod/images/kueue",
            "localhost:5000",
            "127.0.0.1:5000/prod",
            "oci:./registry",
        ] {
            assert!(registry_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://gcr.io/x",
            "gcr.io/X",
            "gcr..io",
            "host:port",
            "oci:",
            "-a.io",
        ] {
            assert!(registry_name(bad).is_err(), "{bad}");
        }
    }
}
