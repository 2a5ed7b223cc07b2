//! Parsing function inputs so that a malformed one names the field at fault.
//!
//! Handlers receive a raw `serde_json::Value` instead of letting the runtime deserialize the
//! event: the runtime's own deserialization error has no stable `error_type` and no field path,
//! while this reports `InvalidJob` with e.g. `job.report.enabled: invalid type: string "yes",
//! expected a boolean`.

use serde::de::DeserializeOwned;

use crate::error::{FerryError, InvalidJob};

/// Deserializes `value` as `T`; on error, names the field as `root.path.to[3].field`.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value, root: &str) -> Result<T, FerryError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = match (root.is_empty(), path.as_str()) {
            (true, ".") => "input".to_owned(),
            (false, ".") => root.to_owned(),
            (true, _) => path,
            (false, _) => format!("{root}.{path}"),
        };
        FerryError::InvalidJob(InvalidJob::one(field, error.into_inner().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::job::JobSpec;

    fn problem(value: serde_json::Value) -> String {
        match parse::<JobSpec>(value, "job") {
            Err(FerryError::InvalidJob(e)) => e.to_string(),
            other => panic!("expected InvalidJob, got {other:?}"),
        }
    }

    #[test]
    fn names_a_nested_field_with_the_wrong_type() {
        let message = problem(json!({
            "name": "n", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0",
            "report": {"enabled": "yes"}
        }));
        assert!(
            message.starts_with("job.report.enabled: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn rejects_an_unknown_kind_listing_the_known_ones() {
        let message = problem(json!({"name": "n", "kind": "fsx_exprot"}));
        assert!(
            message.starts_with("job.kind: unknown variant `fsx_exprot`"),
            "{message}"
        );
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
        let message = problem(json!({"name": "n", "kind": "fsx_export", "paths": ["a", 7]}));
        assert!(
            message.starts_with("job.paths[1]: invalid type"),
            "{message}"
        );
    }
}
