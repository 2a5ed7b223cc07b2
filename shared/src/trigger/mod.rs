//! `s3-trigger`'s pure logic: uploads in, jobs out, nothing lost.
//!
//! [`events`] reads the invocation (S3, SQS or EventBridge), [`key`] decodes object keys,
//! [`routes`] says which job an object belongs to, [`coalesce`] turns a batch of objects into
//! as few jobs as the APIs allow, and [`job_name`] names each job (and its manifest) after its
//! content; [`config`] is the function's configuration. The handler that runs them is
//! [`crate::handlers::s3_trigger`].

pub mod coalesce;
pub mod config;
pub mod events;
pub mod key;
pub mod routes;

use sha2::{Digest, Sha256};

use crate::domain::job::JobSpec;
use crate::domain::text::hex;
use routes::Route;

/// The longest job name: 80 characters, so a name fits where Step Functions names go.
pub const MAX_JOB_NAME: usize = 80;

/// The name of an upload job: the route's name and a digest of the job and of the uploads it
/// covers (see [`coalesce::PlannedJob::uploads`]), within 80 characters of `[A-Za-z0-9_-]`. It
/// names the job's DataSync manifest, so a redelivered batch writes the same manifest.
pub fn job_name(route: &Route, job: &JobSpec, uploads: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(job).unwrap_or_default());
    hasher.update(b"\0uploads\0");
    hasher.update(uploads);
    let mut name: String = route.name.chars().take(40).collect();
    name.push('-');
    let digits = MAX_JOB_NAME - name.len();
    name.push_str(&hex(&hasher.finalize(), digits));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_in_80_characters_of_a_safe_set() {
        // Route names are capped at 40 when routes load; build a longest one by hand.
        let route: Route = serde_json::from_value(
            serde_json::json!({"name": "r".repeat(40), "bucket": "ferry-data",
            "job": {"name": "n", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}),
        )
        .unwrap();
        let name = job_name(&route, &route.job, &[0; 32]);
        assert!(name.len() <= MAX_JOB_NAME, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(name, job_name(&route, &route.job, &[0; 32]));
        assert_ne!(name, job_name(&route, &route.job, &[1; 32]));
    }
}
