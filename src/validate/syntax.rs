//! The grammar of single values: digests, tags, image and registry names.
//! Each check returns why a value is wrong, in words a user can act on.
//! Digests, tags and name paths follow the OCI distribution grammar, whose
//! one copy is the registry layer's (`registry::digest`,
//! `registry::reference`): what `check` accepts is what the registry code
//! will parse.

use crate::registry::digest::check as check_digest;
use crate::registry::reference::{check_path, check_tag};

/// `^sha256:[0-9a-f]{64}$`, as kpromo requires.
pub fn digest(value: &str) -> Result<(), String> {
    check_digest(value)
}

/// `^\w[\w.-]{0,127}$` (ASCII `\w`), the OCI distribution tag grammar.
pub fn tag(value: &str) -> Result<(), String> {
    check_tag(value)
}

/// An image name: `/`-separated path components.
pub fn image_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the name is empty".to_string());
    }
    check_path(value)
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
        Some(path) => check_path(path),
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
