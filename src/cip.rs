//! `promoter cip`: kpromo's command line, translated. An existing kpromo job
//! switches by changing only the binary; each flag either maps onto a
//! promoter option, is accepted with a note saying why it is not needed, or
//! is refused with a clear message when honouring it silently would change
//! what the job does.

use crate::cli::{CheckArgs, CipArgs, ColorChoice, ManifestArgs, RunArgs};

/// What a `cip` command line means here.
#[derive(Debug)]
pub enum Translated {
    /// `--parse-only`: validate only.
    Check(CheckArgs),
    /// A promotion (a dry run without `--confirm`).
    Run(RunArgs),
}

/// Translates the flags, returning notes for the user (printed on stderr)
/// or an error for flags promoter cannot honour.
pub fn translate(args: &CipArgs) -> Result<(Translated, Vec<String>), String> {
    if let Some(flag) = refused_flag(args) {
        return Err(format!(
            "{flag} is a kpromo snapshot/vulnerability-scan option that promoter does not have; \
             list a repository with `skopeo list-tags docker://<repo>` and scan images with a scanner of your choice"
        ));
    }
    if args.manifest.is_none() && args.thin_manifest_dir.is_none() {
        return Err("give --manifest FILE or --thin-manifest-dir DIR".to_string());
    }
    let notes = notes(args);
    let manifests = ManifestArgs {
        manifest: args.manifest.clone(),
        thin_manifest_dir: args.thin_manifest_dir.iter().cloned().collect(),
    };
    if args.parse_only == Some(true) {
        let check = CheckArgs {
            color: ColorChoice::Auto,
            ..CheckArgs::of(manifests)
        };
        return Ok((Translated::Check(check), notes));
    }
    Ok((Translated::Run(run_args(args, manifests)), notes))
}

/// The first given flag that promoter refuses.
fn refused_flag(args: &CipArgs) -> Option<&'static str> {
    let refused = [
        ("--snapshot", args.snapshot.is_some()),
        ("--snapshot-tag", args.snapshot_tag.is_some()),
        ("--minimal-snapshot", args.minimal_snapshot.is_some()),
        (
            "--manifest-based-snapshot-of",
            args.manifest_based_snapshot_of.is_some(),
        ),
        ("--output", args.output.is_some()),
        (
            "--vuln-severity-threshold",
            args.vuln_severity_threshold.is_some(),
        ),
    ];
    refused
        .iter()
        .find(|(_, given)| *given)
        .map(|(flag, _)| *flag)
}

/// A note for each given flag that is accepted but not needed here.
fn notes(args: &CipArgs) -> Vec<String> {
    let identity = source_identity(args);
    let identity_given = identity.certificate_identity.is_some()
        || identity.certificate_identity_regexp.is_some()
        || identity.certificate_oidc_issuer.is_some()
        || identity.certificate_oidc_issuer_regexp.is_some();
    let noted = [
        (
            args.use_prow_manifest_diff == Some(true) || args.manifest_diff_since.is_some(),
            "--use-prow-manifest-diff/--manifest-diff-since: not needed; promoter reconciles the whole tree, \
             and a tree already promoted costs one listing per destination repository",
        ),
        (
            args.key_files.is_some() || args.use_service_account.is_some(),
            "--key-files/--use-service-account: ignored; registry credentials come from the docker config or PROMOTER_AUTH_<HOST> (see README)",
        ),
        (
            args.json_log_summary.is_some(),
            "--json-log-summary: ignored; use `promoter run --format json` or --report FILE",
        ),
        (
            args.max_image_size.is_some(),
            "--max-image-size: ignored (kpromo ignores it too)",
        ),
        (
            args.signer_account.is_some(),
            "--signer-account: not used; promoter signs keylessly as the ambient OIDC identity \
             (GitHub Actions' token, SIGSTORE_ID_TOKEN, or `promoter run --identity-token-file`). \
             To sign as that service account, write its identity token to a file \
             (`gcloud auth print-identity-token --impersonate-service-account=ACCOUNT --audiences=sigstore`) \
             and run `promoter run --identity-token-file FILE`",
        ),
        (
            args.max_signature_copies.is_some() || args.max_signature_ops.is_some(),
            "--max-signature-copies/--max-signature-ops: ignored; signing and signature copies share \
             the requests in flight of --threads (promoter's --concurrency) and each registry's rate limit",
        ),
        (
            identity_given,
            "--certificate-*: staging signatures, where present, must verify and match this identity \
             and issuer, or the image is neither signed nor replicated (as `promoter run \
             --certificate-*`); add `--require-signed-source` with `promoter run` to refuse unsigned \
             staging images too",
        ),
    ];
    noted
        .iter()
        .filter(|(given, _)| *given)
        .map(|(_, text)| text.to_string())
        .collect()
}

/// kpromo's `--certificate-*` flags, which staging signatures must match.
fn source_identity(args: &CipArgs) -> crate::cli::IdentityArgs {
    crate::cli::IdentityArgs {
        certificate_identity: args.certificate_identity.clone(),
        certificate_identity_regexp: args.certificate_identity_regexp.clone(),
        certificate_oidc_issuer: args.certificate_oidc_issuer.clone(),
        certificate_oidc_issuer_regexp: args.certificate_oidc_issuer_regexp.clone(),
    }
}

/// The promotion a kpromo command line asks for.
fn run_args(args: &CipArgs, manifests: ManifestArgs) -> RunArgs {
    RunArgs {
        manifests,
        confirm: args.confirm == Some(true),
        format: None,
        concurrency: args.threads.unwrap_or(16),
        max_rps: f64::INFINITY,
        max_rps_host: Vec::new(),
        limiter: crate::cli::LimiterArg::Adaptive,
        insecure_registry: Vec::new(),
        registry_ca: Vec::new(),
        report: None,
        signing: Box::new(crate::cli::SigningArgs {
            // kpromo's `--sign` (default true there): sign when an identity
            // is available; `--sign=true` makes a missing one an error.
            sign: args.sign,
            source_identity: source_identity(args),
            ..Default::default()
        }),
        shard: None,
        shards: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn cip(args: &[&str]) -> Result<(Translated, Vec<String>), String> {
        let mut argv = vec!["promoter", "cip"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Cip(c) => translate(&c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_kpromo_postsubmit_command_line_maps_to_run() {
        let (t, notes) = cip(&[
            "--thin-manifest-dir=k8s.gcr.io",
            "--confirm",
            "--use-prow-manifest-diff",
            "--threads=8",
        ])
        .unwrap();
        let Translated::Run(run) = t else { panic!() };
        assert!(run.confirm);
        assert_eq!(run.concurrency, 8);
        assert_eq!(run.manifests.thin_manifest_dir.len(), 1);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("reconciles the whole tree"));
    }

    #[test]
    fn parse_only_is_check_and_confirm_false_is_a_dry_run() {
        let (t, _) = cip(&["--manifest", "m.yaml", "--parse-only"]).unwrap();
        assert!(matches!(t, Translated::Check(_)));
        let (t, _) = cip(&["--manifest", "m.yaml", "--confirm=false"]).unwrap();
        let Translated::Run(run) = t else { panic!() };
        assert!(!run.confirm);
    }

    #[test]
    fn snapshot_flags_are_refused_clearly() {
        let err = cip(&["--snapshot", "gcr.io/x"]).unwrap_err();
        assert!(err.contains("--snapshot is a kpromo snapshot"), "{err}");
        assert!(cip(&["--confirm"]).unwrap_err().contains("--manifest FILE"));
    }

    #[test]
    fn signing_flags_map_to_run_signing() {
        let (t, notes) = cip(&[
            "--manifest",
            "m.yaml",
            "--sign",
            "--certificate-identity=https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
            "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
        ])
        .unwrap();
        let Translated::Run(run) = t else { panic!() };
        assert_eq!(run.signing.sign, Some(true));
        assert_eq!(
            run.signing
                .source_identity
                .certificate_oidc_issuer
                .as_deref(),
            Some("https://token.actions.githubusercontent.com")
        );
        assert!(run.signing.source_identity.certificate_identity.is_some());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("staging signatures, where present, must verify"));
        assert!(notes.iter().all(|n| !n.contains("not implemented")));

        let (t, _) = cip(&["--manifest", "m.yaml", "--sign=false"]).unwrap();
        let Translated::Run(run) = t else { panic!() };
        assert_eq!(run.signing.sign, Some(false));
        let (t, notes) = cip(&["--manifest", "m.yaml", "--signer-account=a@b"]).unwrap();
        let Translated::Run(run) = t else { panic!() };
        assert_eq!(run.signing.sign, None);
        assert!(notes[0].contains("--identity-token-file"), "{notes:?}");
    }
}
