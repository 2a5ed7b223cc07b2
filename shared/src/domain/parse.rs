//! Deserializing input so that a malformed one names the field at fault, in one place.
//!
//! Handlers take the event as a raw `serde_json::Value` and parse it here rather than letting
//! `lambda_runtime` deserialize it. The runtime does name the field (it also uses
//! `serde_path_to_error`), but reports the failure with its own `error_type`, the Rust type name
//! `lambda_runtime::deserializer::DeserializeError`, before the handler runs: the state machine
//! could not match it, and `s3-trigger` could not fail one SQS message alone. Parsing here gives
//! the stable `InvalidJob` with `job.report.enabled: invalid type: string "yes", expected a
//! boolean`. Routes (`FERRY_ROUTES`) are parsed the same way.

use serde::de::DeserializeOwned;

use crate::error::FieldErrors;

/// Deserializes `value` as `T`; on error, names the field as `root.path.to[3].field`. A whole
/// function input (`root` empty) must be a JSON object: serde would otherwise read a struct
/// whose fields are all optional from an empty array.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    root: &str,
) -> Result<T, FieldErrors> {
    if root.is_empty() && !value.is_object() {
        return Err(FieldErrors::one(
            "input",
            format!("expected a JSON object, got {}", kind_of(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| problem(root, e))
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Deserializes the JSON text `text` as `T`, naming the field as [`from_value`] does.
pub fn from_str<T: DeserializeOwned>(text: &str, root: &str) -> Result<T, FieldErrors> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
        .map_err(|e| problem(root, e))
}

fn problem(root: &str, error: serde_path_to_error::Error<serde_json::Error>) -> FieldErrors {
    let path = error.path().to_string();
    FieldErrors::one(field(root, &path), error.into_inner().to_string())
}

/// `root` joined with a `serde_path_to_error` path (`.` for the whole value, `[3]` or `a.b`).
fn field(root: &str, path: &str) -> String {
    match (root.is_empty(), path) {
        (true, ".") => "input".to_owned(),
        (false, ".") => root.to_owned(),
        (true, _) => path.to_owned(),
        (false, _) if path.starts_with('[') => format!("{root}{path}"),
        (false, _) => format!("{root}.{path}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::job::JobSpec;

    fn problem(value: serde_json::Value) -> String {
        match from_value::<JobSpec>(value, "job") {
            Err(e) => e.to_string(),
            Ok(job) => panic!("expected an error, got {job:?}"),
        }
    }

    /// The problem with `value`, which must start with `start`.
    fn problem_starting(value: serde_json::Value, start: &str) -> String {
        let message = problem(value);
        assert!(message.starts_with(start), "{message}");
        message
    }

    #[test]
    fn names_a_nested_field_with_the_wrong_type() {
        let job = json!({
            "name": "n", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0",
            "report": {"enabled": "yes"}
        });
        problem_starting(job, "job.report.enabled: invalid type");
    }

    #[test]
    fn rejects_an_unknown_kind_listing_the_known_ones() {
        let job = json!({"name": "n", "kind": "fsx_exprot"});
        let message = problem_starting(job, "job.kind: unknown variant `fsx_exprot`");
        assert!(message.contains("fsx_export"), "{message}");
    }

    #[test]
    fn rejects_a_misspelled_field() {
        let message = problem(json!({"name": "n", "kind": "fsx_export", "pahts": ["a"]}));
        assert!(message.contains("unknown field `pahts`"), "{message}");
    }

    #[test]
    fn names_a_missing_required_field() {
        let message = problem(json!({"kind": "datasync"}));
        assert!(message.contains("missing field `name`"), "{message}");
    }

    #[test]
    fn names_the_element_of_a_list() {
        let job = json!({"name": "n", "kind": "fsx_export", "paths": ["a", 7]});
        problem_starting(job, "job.paths[1]: invalid type");
    }

    #[test]
    fn joins_roots_and_paths() {
        for (root, path, joined) in [
            ("", ".", "input"),
            ("routes", ".", "routes"),
            ("routes", "[2].job", "routes[2].job"),
            ("job", "paths[1]", "job.paths[1]"),
            ("", "task.task_id", "task.task_id"),
        ] {
            assert_eq!(field(root, path), joined);
        }
        let e = from_str::<Vec<u32>>("[1, \"x\"]", "routes").unwrap_err();
        assert!(e.mentions("routes[1]"), "{e}");
    }
}
