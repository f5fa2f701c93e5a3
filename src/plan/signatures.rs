//! Planning signatures, pure (issue 20 parts 2 and 3): which wanted digests
//! must be signed, and where their signatures must be replicated, so that
//! every run converges to every destination carrying them, whatever the
//! last run did (killed, failed to sign, older version). Decided from the
//! listings the inventory already made ([`Knowledge::is_signed`]): a signed
//! steady state costs no request here.

use rustc_hash::FxHashSet;
use serde::Serialize;

use super::{Knowledge, Plan, Repo, RepoId, Wants};
use crate::diagnostic::Location;
use crate::registry::Digest;
use crate::sign::listed::{Needed, needed};

/// One destination that holds a digest (or will once the plan's copy lands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub destination: Repo,
    /// Its listing names the digest's signature tag.
    pub signed: bool,
    /// The tags the manifests want for the digest there (for the
    /// promotion record of its attestations).
    pub tags: Vec<String>,
}

/// What one digest needs so that every destination holding it carries its
/// signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignatureWork {
    pub source: Repo,
    pub digest: Digest,
    /// Where it is signed (its first destination that holds it); none when
    /// some destination already lists its signature.
    pub sign: Option<Repo>,
    /// Where its signatures are read once to be replicated.
    pub from: Repo,
    /// Where they are replicated.
    pub to: Vec<Repo>,
    /// Every destination holding it, in the manifests' order.
    #[serde(skip)]
    pub holders: Vec<Holder>,
    /// Where the manifests list the digest.
    #[serde(skip)]
    pub at: Location,
}

impl SignatureWork {
    /// The work for `holders`, if any is needed.
    fn decide(
        source: Repo,
        digest: Digest,
        holders: Vec<Holder>,
        at: Location,
    ) -> Option<SignatureWork> {
        let signed: Vec<bool> = holders.iter().map(|h| h.signed).collect();
        let (sign, donor, to) = match needed(&signed) {
            Needed::Nothing => return None,
            Needed::Sign => (true, 0, (1..holders.len()).collect()),
            Needed::Replicate { donor, to } => (false, donor, to),
        };
        let from = holders[donor].destination.clone();
        Some(SignatureWork {
            source,
            digest,
            sign: sign.then(|| from.clone()),
            from,
            to: to
                .into_iter()
                .map(|i: usize| holders[i].destination.clone())
                .collect(),
            holders,
            at,
        })
    }

    /// The work once the copy is done: without the destinations where the
    /// image did not land (`failed`), so that nothing is signed or
    /// replicated where the image is not. `None` when nothing is left.
    pub fn without(self, failed: impl Fn(&Repo) -> bool) -> Option<SignatureWork> {
        let holders: Vec<Holder> = self
            .holders
            .into_iter()
            .filter(|h| !failed(&h.destination))
            .collect();
        SignatureWork::decide(self.source, self.digest, holders, self.at)
    }
}

/// The signature work of every want of `wants`: its holders are the
/// destinations that hold it ([`Knowledge::is_present`]) or that `plan`
/// copies it to; a digest some holder does not list as signed gets work.
/// Unreadable destinations are left out (nothing is known of them).
pub fn plan(wants: &Wants, knowledge: &Knowledge, plan: &Plan) -> Vec<SignatureWork> {
    let names = &wants.names;
    let copied: FxHashSet<(&Repo, Digest)> = plan
        .images
        .iter()
        .flat_map(|i| {
            i.targets
                .iter()
                .filter(|t| t.copy)
                .map(move |t| (&t.destination, i.digest))
        })
        .collect();
    let mut out = Vec::new();
    for want in &wants.items {
        let holding: Vec<(RepoId, bool, usize)> = want
            .destinations
            .iter()
            .filter(|(repo, _)| !knowledge.unreadable.contains(repo))
            .filter(|(repo, _)| {
                knowledge.is_present(*repo, want.digest)
                    || copied.contains(&(names.repo(*repo), want.digest))
            })
            .map(|&(repo, list)| (repo, knowledge.is_signed(repo, want.digest), list))
            .collect();
        if holding.iter().all(|(_, signed, _)| *signed) {
            continue;
        }
        let holders = holding
            .into_iter()
            .map(|(repo, signed, list)| Holder {
                destination: names.repo(repo).clone(),
                signed,
                tags: want.tag_lists[list]
                    .iter()
                    .map(|t| names.tag(t.tag).to_owned())
                    .collect(),
            })
            .collect();
        out.extend(SignatureWork::decide(
            names.repo(want.source).clone(),
            want.digest,
            holders,
            want.at.clone(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::read;
    use crate::registry::Inventory;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const SIG_A: &str =
        "sha256-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sig";

    fn wants() -> Wants {
        let yaml = format!(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n- name: eu.gcr.io/prod\n- name: asia.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"{A}\": [\"v1\"]\n    \"{B}\": [\"v2\"]\n"
        );
        let mut diagnostics = Vec::new();
        let manifest = read::plain("m.yaml".into(), &yaml, &mut diagnostics).unwrap();
        super::super::wants(&[manifest])
    }

    fn id(wants: &Wants, host: &str) -> RepoId {
        let repo = Repo {
            registry: host.into(),
            repo: "prod/app".parse().unwrap(),
        };
        wants.names.repo_id(&repo).unwrap()
    }

    /// Every destination holds A and B; A's `.sig` tag is listed where
    /// `sig_a` says, and every tag of `more` everywhere.
    fn knowledge(wants: &Wants, sig_a: [bool; 3], more: &[&str]) -> Knowledge {
        let mut knowledge = Knowledge::default();
        for (host, signed) in ["us.gcr.io", "eu.gcr.io", "asia.gcr.io"]
            .into_iter()
            .zip(sig_a)
        {
            let mut inv = Inventory::default();
            inv.add_tag(A.parse().unwrap(), "v1");
            inv.add_tag(B.parse().unwrap(), "v2");
            let repo = id(wants, host);
            knowledge.absorb(wants, repo, inv);
            let mut tags = vec!["v1", "v2"];
            tags.extend(signed.then_some(SIG_A));
            tags.extend(more);
            knowledge.absorb_signatures(wants, repo, tags, true);
        }
        knowledge
    }

    #[test]
    fn unsigned_digests_are_signed_and_gaps_replicated() {
        let wants = wants();
        let knowledge = knowledge(&wants, [false, true, false], &[]);
        let plan = super::super::classify(&wants, &knowledge);
        assert!(plan.is_noop(), "{plan:?}");
        let work = super::plan(&wants, &knowledge, &plan);
        assert_eq!(work.len(), 2, "{work:?}");
        // A is signed on eu: replicated from there to us and asia.
        let a = &work[0];
        assert_eq!(a.digest.to_string(), A);
        assert_eq!(a.sign, None);
        assert_eq!(a.from.registry, "eu.gcr.io");
        let to: Vec<&str> = a.to.iter().map(|r| r.registry.as_str()).collect();
        assert_eq!(to, ["us.gcr.io", "asia.gcr.io"]);
        // B is signed nowhere: signed on its first destination.
        let b = &work[1];
        assert_eq!(b.sign.as_ref().unwrap().registry, "us.gcr.io");
        assert_eq!(b.to.len(), 2);
        assert_eq!(b.holders[0].tags, ["v2"]);
    }

    #[test]
    fn a_signed_steady_state_has_no_work() {
        let wants = wants();
        // B signed everywhere too.
        let sig_b = format!("sha256-{}.sig", &B[7..]);
        let knowledge = knowledge(&wants, [true; 3], &[sig_b.as_str()]);
        let plan = super::super::classify(&wants, &knowledge);
        assert!(super::plan(&wants, &knowledge, &plan).is_empty());
    }

    #[test]
    fn a_failed_copy_moves_signing_to_the_next_destination() {
        let wants = wants();
        // Nothing is anywhere yet: the plan copies A and B everywhere.
        let knowledge = Knowledge::default();
        let plan = super::super::classify(&wants, &knowledge);
        let work = super::plan(&wants, &knowledge, &plan);
        assert_eq!(work[0].sign.as_ref().unwrap().registry, "us.gcr.io");
        let after = work[0]
            .clone()
            .without(|r| r.registry == "us.gcr.io")
            .unwrap();
        assert_eq!(after.sign.as_ref().unwrap().registry, "eu.gcr.io");
        let to: Vec<&str> = after.to.iter().map(|r| r.registry.as_str()).collect();
        assert_eq!(to, ["asia.gcr.io"]);
        // Landed nowhere: nothing to sign.
        assert!(work[0].clone().without(|_| true).is_none());
    }
}
