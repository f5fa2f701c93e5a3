//! The files around `promoter action` agree with it: `action.yml` declares
//! exactly the inputs the binary reads and the outputs it writes, runs the
//! image's binary with `action`; the Dockerfile makes that binary the
//! entrypoint and lets git read the mounted workspace; the example workflow
//! pins actions by commit and asks for the least permissions.

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;
use promoter::action::OUTPUTS;
use promoter::action::inputs::{For, NAMES, PASS_THROUGH};
use promoter::cli::Cli;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The keys directly under the top-level `section:` of a YAML file
/// (two-space indentation, as action.yml is written).
fn keys(text: &str, section: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if inside
            && let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !key.starts_with(' ')
        {
            keys.insert(key.to_string());
        }
    }
    keys
}

#[test]
fn action_yml_declares_what_the_binary_reads_and_writes() {
    let yml = read("action.yml");
    let declared = keys(&yml, "inputs");
    let known: BTreeSet<String> = NAMES
        .iter()
        .copied()
        .chain(PASS_THROUGH.iter().map(|(name, _)| *name))
        .map(String::from)
        .collect();
    assert_eq!(declared, known);
    for name in &declared {
        assert_eq!(name, &name.to_ascii_lowercase(), "inputs are kebab-case");
        assert!(!name.contains('_'), "inputs are kebab-case: {name}");
    }
    let outputs: BTreeSet<String> = OUTPUTS.iter().map(|o| (*o).to_string()).collect();
    assert_eq!(keys(&yml, "outputs"), outputs);
    assert!(yml.contains("default: ${{ github.token }}"));
    // `summary` is renamed; the old name stays, deprecated, for a release.
    assert!(yml.contains("  show-summary:\n"));
    assert!(yml.contains("  summary:\n    description: Deprecated name of `show-summary`"));
    assert!(yml.contains("    deprecationMessage: "));
    assert!(yml.contains("  using: docker\n  image: Dockerfile\n"));
    assert!(yml.contains("  args:\n    - action\n"));
}

#[test]
fn pass_through_inputs_are_flags_of_their_commands() {
    let cli = Cli::command();
    let flags = |command: &str| -> BTreeSet<String> {
        cli.find_subcommand(command)
            .unwrap_or_else(|| panic!("no `promoter {command}`"))
            .get_arguments()
            .filter_map(|a| a.get_long().map(String::from))
            .collect()
    };
    let (run, verify) = (flags("run"), flags("verify"));
    for (name, target) in PASS_THROUGH {
        if matches!(target, For::Run | For::Both) {
            assert!(run.contains(*name), "`run` has no --{name}");
        }
        if matches!(target, For::Verify | For::Both) {
            assert!(verify.contains(*name), "`verify` has no --{name}");
        }
    }
    // The action's own flags of the commands.
    for flag in [
        "manifest",
        "thin-manifest-dir",
        "format",
        "report",
        "confirm",
        "sign",
    ] {
        assert!(run.contains(flag), "`run` has no --{flag}");
    }
    assert!(verify.contains("fix"));
}

#[test]
fn dockerfile_runs_the_static_binary_with_git() {
    let docker = read("Dockerfile");
    // Multi-arch: the musl target follows BuildKit's TARGETARCH.
    assert!(docker.contains("ARG TARGETARCH"));
    assert!(docker.contains("amd64) arch=x86_64"));
    assert!(docker.contains("arm64) arch=aarch64"));
    assert!(docker.contains(r#"--target "${arch}-unknown-linux-musl""#));
    assert!(!docker.contains("--target x86_64"), "no hard-coded target");
    for line in docker.lines().filter(|l| l.starts_with("FROM ")) {
        let image = line.split_whitespace().nth(1).unwrap();
        let tag = image.split_once(':').map_or("", |(_, t)| t);
        assert!(
            tag.chars().any(|c| c.is_ascii_digit()) && !tag.contains("latest"),
            "{line}: pin the base"
        );
    }
    assert!(docker.contains("ENTRYPOINT [\"/usr/local/bin/promoter\"]"));
    assert!(docker.contains("CMD [\"action\"]"));
    assert!(docker.contains("apk add --no-cache git ca-certificates"));
    assert!(docker.contains("safe.directory"));
}

/// The release workflow builds both platforms natively, promotes the image
/// with promoter itself (signed and attested), verifies it, and tags a
/// commit whose action.yml names the image by digest.
#[test]
fn release_workflow_publishes_a_signed_multi_arch_image_by_digest() {
    let release = read(".github/workflows/release.yml");
    assert!(release.contains("tags: [\"v[0-9]+.[0-9]+.[0-9]+\"]"));
    assert!(release.contains("arch: amd64") && release.contains("arch: arm64"));
    assert!(release.contains("runner: ubuntu-24.04-arm"));
    assert!(release.contains("permissions: {}"));
    assert_eq!(release.matches("id-token: write").count(), 1);
    assert!(release.contains("run run --manifest release.yaml --confirm --sign=true"));
    assert!(release.contains("run verify --manifest release.yaml --attestations"));
    assert!(release.contains(r#"image: $reference # $VERSION"#));
    assert!(release.contains(r#"reference="docker://ghcr.io/$owner/promoter@$DIGEST""#));
    // Main keeps building from the Dockerfile, which CI tests with `uses: ./`.
    assert!(read("action.yml").contains("  image: Dockerfile\n"));
    assert!(read(".github/workflows/ci.yml").contains("uses: ./\n"));
}

#[test]
fn example_workflow_pins_actions_and_asks_for_least_privilege() {
    let workflow = read("examples/workflows/promote.yml");
    let uses: Vec<&str> = workflow
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- uses: ")
                .or(l.trim().strip_prefix("uses: "))
        })
        .collect();
    assert!(uses.len() >= 4, "{uses:?}");
    for u in &uses {
        let reference = u.split('@').nth(1).unwrap_or("").split(' ').next().unwrap();
        assert!(
            reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit()),
            "not pinned by full commit SHA: {u}"
        );
    }
    assert!(workflow.contains("permissions: {}"));
    assert_eq!(workflow.matches("fetch-depth: 0").count(), 2);
    // id-token only in the promote job, which comes last.
    let promote = workflow.find("\n  promote:").unwrap();
    assert_eq!(workflow.matches("id-token: write").count(), 1);
    assert!(workflow.find("id-token: write").unwrap() > promote);
    assert_eq!(workflow.matches("pull-requests: write").count(), 1);
    assert!(workflow.find("pull-requests: write").unwrap() < promote);
}
