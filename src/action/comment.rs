//! The pull-request comment (input `comment: true`): one comment holding
//! the plan, found again by a hidden marker and edited in place, so that
//! every push updates it instead of adding another.

use serde_json::{Value, json};

use super::api::{ApiError, GitHub};

/// The hidden first line that marks the action's comment.
pub const MARKER: &str = "<!-- promoter-action: plan -->";

/// Comments fetched per page (GitHub's maximum).
const PER_PAGE: usize = 100;

/// Whether the comment was created or an existing one updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created(u64),
    Updated(u64),
}

/// Creates or updates the marked comment on pull request `number`.
///
/// # Errors
///
/// The failing call's error (403 with a fork's read-only token).
pub async fn upsert(github: &GitHub, number: u64, body: &str) -> Result<Written, ApiError> {
    let body = format!("{MARKER}\n{body}");
    let mut page = 1;
    let existing = loop {
        let comments = github
            .call(
                "GET",
                &format!("/issues/{number}/comments?per_page={PER_PAGE}&page={page}"),
                None,
            )
            .await?;
        let comments = comments.as_array().cloned().unwrap_or_default();
        let found = comments.iter().find_map(|c| {
            let marked = c
                .get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.starts_with(MARKER));
            marked
                .then(|| c.get("id").and_then(Value::as_u64))
                .flatten()
        });
        if found.is_some() || comments.len() < PER_PAGE {
            break found;
        }
        page += 1;
    };
    let payload = json!({ "body": body });
    match existing {
        Some(id) => {
            github
                .call("PATCH", &format!("/issues/comments/{id}"), Some(&payload))
                .await?;
            Ok(Written::Updated(id))
        }
        None => {
            let created = github
                .call(
                    "POST",
                    &format!("/issues/{number}/comments"),
                    Some(&payload),
                )
                .await?;
            Ok(Written::Created(
                created.get("id").and_then(Value::as_u64).unwrap_or(0),
            ))
        }
    }
}
