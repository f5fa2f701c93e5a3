//! The workflow run's context: `GITHUB_EVENT_NAME`, the event payload at
//! `GITHUB_EVENT_PATH`, and the other `GITHUB_*` variables the action
//! needs. Only the fields the action uses are read; a payload that lacks
//! one is an error naming the field, not a panic.

use std::path::Path;

use serde_json::Value;

/// The event that started the workflow, reduced to what decides the mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `pull_request` or `pull_request_target`.
    PullRequest {
        number: u64,
        base_sha: String,
        head_sha: String,
        /// The head repository is not the base repository: the token is
        /// read-only and secrets are absent.
        fork: bool,
    },
    /// `merge_group` (merge queue).
    MergeGroup {
        base_sha: String,
        head_sha: String,
    },
    Push {
        /// `None` when the push created the branch (all-zero `before`).
        before: Option<String>,
        after: String,
        /// The pushed ref is `refs/heads/<default branch>`.
        to_default_branch: bool,
    },
    WorkflowDispatch,
    Schedule,
    /// Any other event: the action only checks.
    Other(String),
}

/// What the action knows about the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub event: Event,
    /// `GITHUB_REPOSITORY`: `owner/name`.
    pub repository: Option<String>,
    /// The commit the results belong to: the pull request's head, or
    /// `GITHUB_SHA`.
    pub head_sha: Option<String>,
    /// `GITHUB_API_URL`, without a trailing slash.
    pub api_url: String,
}

/// A context that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("cannot read the event payload {path}: {message}")]
    Read { path: String, message: String },
    #[error("the {event} payload has no `{field}`")]
    Missing { event: String, field: &'static str },
}

impl Context {
    /// Reads the context through `var` (`std::env::var` in the binary).
    ///
    /// # Errors
    ///
    /// When the payload cannot be read or lacks a field the event needs.
    pub fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, EventError> {
        let name = var("GITHUB_EVENT_NAME").unwrap_or_default();
        let payload = match var("GITHUB_EVENT_PATH").filter(|p| !p.is_empty()) {
            Some(path) => read_payload(Path::new(&path))?,
            None => Value::Null,
        };
        let event = Event::from_payload(&name, &payload)?;
        let head_sha = match &event {
            Event::PullRequest { head_sha, .. } | Event::MergeGroup { head_sha, .. } => {
                Some(head_sha.clone())
            }
            _ => var("GITHUB_SHA").filter(|s| !s.is_empty()),
        };
        let api_url = var("GITHUB_API_URL")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://api.github.com".to_string())
            .trim_end_matches('/')
            .to_string();
        Ok(Context {
            event,
            repository: var("GITHUB_REPOSITORY").filter(|r| r.contains('/')),
            head_sha,
            api_url,
        })
    }
}

fn read_payload(path: &Path) -> Result<Value, EventError> {
    let failed = |message: String| EventError::Read {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| failed(e.to_string()))
}

impl Event {
    /// The event named `name` with payload `payload`.
    ///
    /// # Errors
    ///
    /// When a field the event needs is missing.
    pub fn from_payload(name: &str, payload: &Value) -> Result<Self, EventError> {
        let field = |pointer: &str, field: &'static str| -> Result<String, EventError> {
            payload
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| EventError::Missing {
                    event: name.to_string(),
                    field,
                })
        };
        Ok(match name {
            "pull_request" | "pull_request_target" => {
                let number = payload
                    .pointer("/pull_request/number")
                    .or_else(|| payload.get("number"))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| EventError::Missing {
                        event: name.to_string(),
                        field: "pull_request.number",
                    })?;
                let head_repo = payload
                    .pointer("/pull_request/head/repo/full_name")
                    .and_then(Value::as_str);
                let base_repo = payload
                    .pointer("/pull_request/base/repo/full_name")
                    .and_then(Value::as_str);
                // A deleted fork has `head.repo: null`: still a fork.
                let fork = head_repo != base_repo
                    || payload
                        .pointer("/pull_request/head/repo/fork")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                Event::PullRequest {
                    number,
                    base_sha: field("/pull_request/base/sha", "pull_request.base.sha")?,
                    head_sha: field("/pull_request/head/sha", "pull_request.head.sha")?,
                    fork,
                }
            }
            "merge_group" => Event::MergeGroup {
                base_sha: field("/merge_group/base_sha", "merge_group.base_sha")?,
                head_sha: field("/merge_group/head_sha", "merge_group.head_sha")?,
            },
            "push" => {
                let git_ref = field("/ref", "ref")?;
                let default = payload
                    .pointer("/repository/default_branch")
                    .and_then(Value::as_str);
                Event::Push {
                    before: field("/before", "before")
                        .ok()
                        .filter(|b| !b.bytes().all(|c| c == b'0')),
                    after: field("/after", "after")?,
                    to_default_branch: default
                        .is_some_and(|d| git_ref.strip_prefix("refs/heads/") == Some(d)),
                }
            }
            "workflow_dispatch" => Event::WorkflowDispatch,
            "schedule" => Event::Schedule,
            other => Event::Other(other.to_string()),
        })
    }

    /// The pull request number, when there is one to comment on.
    #[must_use]
    pub fn pull_request(&self) -> Option<u64> {
        match self {
            Event::PullRequest { number, .. } => Some(*number),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pull_request_from_a_fork() {
        let payload = json!({"number": 7, "pull_request": {"number": 7,
            "base": {"sha": "b", "repo": {"full_name": "o/r"}},
            "head": {"sha": "h", "repo": {"full_name": "f/r", "fork": true}}}});
        assert_eq!(
            Event::from_payload("pull_request", &payload).unwrap(),
            Event::PullRequest {
                number: 7,
                base_sha: "b".into(),
                head_sha: "h".into(),
                fork: true
            }
        );
    }

    #[test]
    fn push_to_the_default_branch_creating_it() {
        let payload = json!({"ref": "refs/heads/main", "before": "0000000000",
            "after": "a", "repository": {"default_branch": "main"}});
        assert_eq!(
            Event::from_payload("push", &payload).unwrap(),
            Event::Push {
                before: None,
                after: "a".into(),
                to_default_branch: true
            }
        );
        let payload = json!({"ref": "refs/heads/mainline", "before": "b", "after": "a",
            "repository": {"default_branch": "main"}});
        assert!(matches!(
            Event::from_payload("push", &payload).unwrap(),
            Event::Push {
                to_default_branch: false,
                before: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = Event::from_payload("merge_group", &json!({"merge_group": {}})).unwrap_err();
        assert!(err.to_string().contains("merge_group.base_sha"), "{err}");
    }
}
