//! Idempotency keys: a retried start must never create a second task.
//!
//! FSx `CreateDataRepositoryTask` takes a `ClientRequestToken` (1-63 characters of
//! `[A-Za-z0-9_.-]`, API model); the Rust SDK fills a random one when none is given, so a
//! retried Lambda would create a second task. Ferry derives the token from the caller's identity:
//! the Step Functions execution name (unique per execution for 90 days, identical across the
//! state machine's retries) and the job itself, so a different job under the same name gets a
//! different token instead of FSx's `IncompatibleParameterError`. Without an execution name (a
//! direct invocation), the job alone is the identity: identical direct starts are one task.
//!
//! DataSync's `StartTaskExecution` has no token; Ferry tags the execution with the same key and
//! looks for it among the task's active executions before starting (see `aws::datasync`).

use sha2::{Digest, Sha256};

use crate::domain::job::JobSpec;
use crate::domain::text::hex;

/// Prefix of every key, so Ferry's tokens and tags are recognizable.
const PREFIX: &str = "ferry-";
/// Hex digits of SHA-256 kept: 56 (224 bits); with the prefix, 62 characters, within FSx's 63.
const HEX_DIGITS: usize = 56;

/// The tag key under which a DataSync execution carries its idempotency key.
pub const IDEMPOTENCY_TAG: &str = "ferry:idempotency-key";

/// An idempotency key: `ferry-` and 56 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Derives the key for starting `job` on behalf of `execution` (a Step Functions execution
    /// name or ARN), or of the job alone when there is none.
    pub fn derive(execution: Option<&str>, job: &JobSpec) -> IdempotencyKey {
        let mut hasher = Sha256::new();
        hasher.update(b"ferry/v1\0");
        match execution {
            Some(name) => {
                hasher.update(b"execution\0");
                hasher.update(name.as_bytes());
            }
            None => hasher.update(b"job-only"),
        }
        hasher.update(b"\0");
        // The struct serializes in declaration order and tags are a BTreeMap: deterministic.
        // Serializing plain data to a Vec cannot fail; an empty body would still hash the name.
        hasher.update(serde_json::to_vec(job).unwrap_or_default());
        IdempotencyKey(format!("{PREFIX}{}", hex(&hasher.finalize(), HEX_DIGITS)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::JobKind;

    fn job(name: &str) -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "name": name, "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0",
            "paths": ["a", "b"], "tags": {"z": "1", "a": "2"}
        }))
        .unwrap()
    }

    fn is_valid_fsx_token(token: &str) -> bool {
        (1..=63).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }

    #[test]
    fn same_execution_and_job_give_the_same_token() {
        let a = IdempotencyKey::derive(Some("exec-1"), &job("nightly"));
        let b = IdempotencyKey::derive(Some("exec-1"), &job("nightly"));
        assert_eq!(a, b);
        assert!(is_valid_fsx_token(a.as_str()), "{a}");
        assert_eq!(a.as_str().len(), 62);
    }

    #[test]
    fn different_executions_or_jobs_give_different_tokens() {
        let base = IdempotencyKey::derive(Some("exec-1"), &job("nightly"));
        assert_ne!(
            base,
            IdempotencyKey::derive(Some("exec-2"), &job("nightly"))
        );
        assert_ne!(base, IdempotencyKey::derive(Some("exec-1"), &job("hourly")));
        assert_ne!(base, IdempotencyKey::derive(None, &job("nightly")));
        let mut other_kind = job("nightly");
        other_kind.kind = JobKind::FsxRelease;
        assert_ne!(base, IdempotencyKey::derive(Some("exec-1"), &other_kind));
    }

    #[test]
    fn any_execution_name_yields_a_valid_token() {
        for name in [
            "",
            "ünïcödé name with spaces",
            &"x".repeat(10_000),
            "a\0b\r\n|/",
        ] {
            let token = IdempotencyKey::derive(Some(name), &job("n"));
            assert!(is_valid_fsx_token(token.as_str()), "{token}");
        }
    }

    #[test]
    fn the_token_is_stable_across_builds() {
        // A changed derivation would make a retry after a deploy start a second task.
        let token = IdempotencyKey::derive(Some("exec-1"), &job("nightly"));
        assert_eq!(token.as_str(), GOLDEN);
    }

    const GOLDEN: &str = "ferry-4d7fa26973384adb31c49a827a6850e899ed146ff0f91d6b8b678eb4";
}
