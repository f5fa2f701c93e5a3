//! What the step does, decided from the inputs and the event. Pure: data
//! in, data out, so every combination is a unit test.
//!
//! Mode `auto`:
//! - `pull_request`, `merge_group`: check against the base commit, then a
//!   dry-run plan against the live registries (read, never write);
//! - `push` to the default branch: check against `before`, then promote
//!   (`run --confirm`, a whole-tree reconcile: the plan skips what is done);
//! - `push` elsewhere: check against `before`;
//! - `workflow_dispatch`, `schedule`: check, then `run`, promoting only
//!   when `confirm: true` (kpromo's periodic reconcile);
//! - anything else: check.
//!
//! Mode `run` checks first too (against the event's base, if any), so that
//! invalid manifests are reported as annotations before `run` refuses them.

use super::event::Event;
use super::inputs::{Confirm, Inputs, Mode};

/// The steps to take, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps {
    /// `promoter check`, against this base revision when `Some(Some(..))`.
    pub check: Option<Option<String>>,
    /// `promoter run`, with `--confirm` when `Some(true)`.
    pub run: Option<bool>,
    /// `promoter verify`.
    pub verify: bool,
}

/// A combination the action refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// Decides the steps.
///
/// # Errors
///
/// When the inputs ask to write to registries from a pull request or a
/// merge queue: code there is not reviewed yet.
pub fn decide(inputs: &Inputs, event: &Event) -> Result<Steps, Refused> {
    let base = inputs.base_ref.clone().or_else(|| match event {
        Event::PullRequest { base_sha, .. } | Event::MergeGroup { base_sha, .. } => {
            Some(base_sha.clone())
        }
        Event::Push { before, .. } => before.clone(),
        _ => None,
    });
    let pre_merge = matches!(event, Event::PullRequest { .. } | Event::MergeGroup { .. });
    let promote_here = matches!(
        event,
        Event::Push {
            to_default_branch: true,
            ..
        }
    );
    if pre_merge && inputs.confirm == Confirm::Yes {
        return Err(Refused(
            "`confirm: true` on a pull request or merge group: the action never writes to \
             registries before the change is merged"
                .into(),
        ));
    }
    let confirm = match inputs.confirm {
        Confirm::Yes => true,
        Confirm::No => false,
        Confirm::Auto => promote_here,
    };
    let none = Steps {
        check: None,
        run: None,
        verify: false,
    };
    Ok(match inputs.mode {
        Mode::Check => Steps {
            check: Some(base),
            ..none
        },
        // The check first: its findings become annotations and Check Run
        // entries, which `run` (stopping at invalid manifests) does not give.
        Mode::Run => Steps {
            check: Some(base),
            run: Some(confirm),
            ..none
        },
        Mode::Verify => Steps {
            verify: true,
            ..none
        },
        Mode::Auto => match event {
            Event::PullRequest { .. } | Event::MergeGroup { .. } => Steps {
                check: Some(base),
                run: Some(false),
                ..none
            },
            Event::Push { .. } => Steps {
                check: Some(base),
                run: promote_here.then_some(confirm),
                ..none
            },
            Event::WorkflowDispatch | Event::Schedule => Steps {
                check: Some(base),
                run: Some(confirm),
                ..none
            },
            Event::Other(_) => Steps {
                check: Some(base),
                ..none
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(mode: Mode, confirm: Confirm) -> Inputs {
        let mut inputs =
            Inputs::read(&|name| (name == "INPUT_MANIFEST").then(|| "promoter.yaml".to_string()))
                .unwrap();
        inputs.mode = mode;
        inputs.confirm = confirm;
        inputs
    }

    fn pr() -> Event {
        Event::PullRequest {
            number: 1,
            base_sha: "base".into(),
            head_sha: "head".into(),
            fork: false,
        }
    }

    fn push(to_default_branch: bool) -> Event {
        Event::Push {
            before: Some("before".into()),
            after: "after".into(),
            to_default_branch,
        }
    }

    #[test]
    fn pull_request_checks_against_base_then_plans_without_writing() {
        let steps = decide(&inputs(Mode::Auto, Confirm::Auto), &pr()).unwrap();
        assert_eq!(steps.check, Some(Some("base".into())));
        assert_eq!(steps.run, Some(false));
        assert!(decide(&inputs(Mode::Run, Confirm::Yes), &pr()).is_err());
    }

    #[test]
    fn push_promotes_only_on_the_default_branch() {
        let steps = decide(&inputs(Mode::Auto, Confirm::Auto), &push(true)).unwrap();
        assert_eq!(steps.check, Some(Some("before".into())));
        assert_eq!(steps.run, Some(true));
        let steps = decide(&inputs(Mode::Auto, Confirm::No), &push(true)).unwrap();
        assert_eq!(steps.run, Some(false));
        let steps = decide(&inputs(Mode::Auto, Confirm::Auto), &push(false)).unwrap();
        assert_eq!(steps.run, None);
    }

    #[test]
    fn schedule_does_what_the_inputs_say() {
        let steps = decide(&inputs(Mode::Auto, Confirm::Auto), &Event::Schedule).unwrap();
        assert_eq!((steps.check, steps.run), (Some(None), Some(false)));
        let steps = decide(&inputs(Mode::Run, Confirm::Yes), &Event::Schedule).unwrap();
        assert_eq!((steps.check, steps.run), (Some(None), Some(true)));
        let steps = decide(
            &inputs(Mode::Verify, Confirm::Auto),
            &Event::WorkflowDispatch,
        )
        .unwrap();
        assert!(steps.verify && steps.run.is_none());
    }
}
