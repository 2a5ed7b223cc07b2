//! `s3-trigger`'s pure logic: uploads in, jobs out, nothing lost.
//!
//! [`events`] reads the invocation (S3, SQS or EventBridge), [`key`] decodes object keys,
//! [`routes`] says which job an object belongs to, [`coalesce`] turns a batch of objects into
//! as few jobs as the APIs allow, and [`execution_name`] names each job's execution after its
//! content. The handler that runs them is [`crate::handlers::s3_trigger`].

pub mod coalesce;
pub mod events;
pub mod key;
pub mod routes;

use sha2::{Digest, Sha256};

use crate::domain::job::JobSpec;
use crate::domain::text::hex;
use routes::Route;

/// Step Functions execution names: 1-80 characters (API reference, StartExecution `name`).
pub const MAX_EXECUTION_NAME: usize = 80;

/// The execution name of a job: the route's name and a digest of the job and of the uploads
/// it covers (see [`coalesce::PlannedJob::uploads`]; a manifest is derived from those), within
/// Step Functions' 80 characters of `[A-Za-z0-9_-]`. A redelivered batch names the same
/// executions, so it starts nothing new.
pub fn execution_name(route: &Route, job: &JobSpec, uploads: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(job).unwrap_or_default());
    hasher.update(b"\0uploads\0");
    hasher.update(uploads);
    let mut name: String = route.name.chars().take(40).collect();
    name.push('-');
    let digits = MAX_EXECUTION_NAME - name.len();
    name.push_str(&hex(&hasher.finalize(), digits));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_fit_step_functions_rules() {
        // Route names are capped at 40 when routes load; build a longest one by hand.
        let route: Route = serde_json::from_value(
            serde_json::json!({"name": "r".repeat(40), "bucket": "ferry-data",
            "job": {"name": "n", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}),
        )
        .unwrap();
        let name = execution_name(&route, &route.job, &[0; 32]);
        assert!(name.len() <= MAX_EXECUTION_NAME, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(name, execution_name(&route, &route.job, &[0; 32]));
        assert_ne!(name, execution_name(&route, &route.job, &[1; 32]));
    }
}
