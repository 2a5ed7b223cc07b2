//! Reading one DataSync detailed report into a digest, entry by entry (see the parent module
//! for what is verified and what is assumed about the format).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::domain::text::truncate_chars;
use crate::notify::digest::DigestBuilder;

/// Error codes longer than this (in characters) are cut: they are group keys, not prose.
const MAX_ERROR_CHARS: usize = 200;

/// Reads one detailed report file into `builder`.
///
/// The file is a JSON object whose lists (`Transferred`, `Verified`, `Skipped`, `Deleted`, …) hold
/// one entry per item; the entries are read one at a time, so a file of any length costs one
/// entry's memory. A top-level list of entries, and several documents one after the other (JSON
/// Lines), are read too. For each entry:
///
/// * no `RelativePath` string, or not an object: [`DigestBuilder::unreadable`];
/// * a status (`TransferStatus`, `VerifyStatus`, any field named `Status` or ending in `Status`)
///   of `FAILED` (or `FAILURE`, `FAIL`, `ERROR`, `ERRORED`), or no success status but an
///   `ErrorCode`, `ErrorDetail`, `FailureCode` or `FailureReason`: [`DigestBuilder::failed`],
///   with the error `ErrorCode`, else `FailureReason (FailureCode)`, else the failing status
///   (`TransferStatus=FAILED`), else `ErrorDetail` (each cut to 200 characters);
/// * a status of `SUCCESS` (or `SUCCEEDED`, `SUCCESSFUL`), or another status with no error field:
///   not a failure, skipped;
/// * neither a status nor an error field: unreadable.
///
/// `cut` says the body was read only up to a byte limit: the report is marked truncated, and the
/// entries before the cut count while the one it falls in is dropped. A body that is not JSON,
/// or JSON that stops before the end of a file that was not cut, counts one unreadable (the
/// entries before the fault still count). Never panics.
pub fn read_detailed_report(body: &[u8], cut: bool, builder: &mut DigestBuilder) {
    if cut {
        builder.truncated();
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut documents = 0usize;
    loop {
        // `end` only skips whitespace and looks: it fails while there is another document.
        if de.end().is_ok() {
            if documents == 0 && !cut {
                builder.unreadable();
            }
            return;
        }
        match (Document {
            builder: &mut *builder,
        })
        .deserialize(&mut de)
        {
            Ok(()) => documents += 1,
            Err(e) => {
                if !(cut && e.is_eof()) {
                    builder.unreadable();
                }
                return;
            }
        }
    }
}

/// A whole report document: an object of entry lists, a list of entries, or one entry.
struct Document<'a> {
    builder: &'a mut DigestBuilder,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DataSync task report (a JSON object of entry lists)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let builder = self.builder;
        // The document's own scalar fields, in case the document is a single entry.
        let mut scalars = Map::new();
        let mut lists = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value_seed(Field {
                builder: &mut *builder,
            })? {
                FieldValue::List => lists += 1,
                FieldValue::Scalar(value) => {
                    scalars.insert(key, value);
                }
                FieldValue::Object => {}
            }
        }
        if lists == 0 && scalars.contains_key("RelativePath") {
            read_entry(&Value::Object(scalars), builder);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        read_entries(seq, self.builder)
    }
}

/// What a top-level field held.
enum FieldValue {
    /// A list, read as entries.
    List,
    /// A string, number, boolean or null.
    Scalar(Value),
    /// An object (skipped).
    Object,
}

/// One top-level field of a document: lists are read as entries as they are parsed.
struct Field<'a> {
    builder: &'a mut DigestBuilder,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = FieldValue;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<FieldValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = FieldValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FieldValue, A::Error> {
        read_entries(seq, self.builder)?;
        Ok(FieldValue::List)
    }
}

/// Reads a list of entries, one at a time.
fn read_entries<'de, A: SeqAccess<'de>>(
    mut seq: A,
    builder: &mut DigestBuilder,
) -> Result<(), A::Error> {
    while let Some(entry) = seq.next_element::<Value>()? {
        read_entry(&entry, builder);
    }
    Ok(())
}

/// How an entry ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Failed(String),
    NotFailed,
    Unknown,
}

fn read_entry(entry: &Value, builder: &mut DigestBuilder) {
    let Some(fields) = entry.as_object() else {
        builder.unreadable();
        return;
    };
    let Some(path) = fields
        .get("RelativePath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        builder.unreadable();
        return;
    };
    match outcome(fields) {
        Outcome::Failed(error) => builder.failed(path, &error),
        Outcome::NotFailed => {}
        Outcome::Unknown => builder.unreadable(),
    }
}

fn outcome(fields: &Map<String, Value>) -> Outcome {
    let mut failing: Option<(&str, &str)> = None;
    let mut succeeded = false;
    let mut has_status = false;
    for (key, value) in fields {
        if !key.ends_with("Status") {
            continue;
        }
        let Some(status) = value.as_str().map(str::trim) else {
            continue;
        };
        has_status = true;
        if is_failure(status) {
            failing.get_or_insert((key.as_str(), status));
        } else if is_success(status) {
            succeeded = true;
        }
    }
    let has_error = ["ErrorCode", "ErrorDetail", "FailureCode", "FailureReason"]
        .iter()
        .any(|k| text(fields.get(*k)).is_some());
    if failing.is_some() || (!succeeded && has_error) {
        Outcome::Failed(error_of(fields, failing))
    } else if has_status {
        Outcome::NotFailed
    } else {
        Outcome::Unknown
    }
}

fn is_failure(status: &str) -> bool {
    ["FAILED", "FAILURE", "FAIL", "ERROR", "ERRORED"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

fn is_success(status: &str) -> bool {
    ["SUCCESS", "SUCCEEDED", "SUCCESSFUL"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

/// The error to group an entry under.
fn error_of(fields: &Map<String, Value>, failing: Option<(&str, &str)>) -> String {
    let error = if let Some(code) = text(fields.get("ErrorCode")) {
        code
    } else {
        match (
            text(fields.get("FailureReason")),
            text(fields.get("FailureCode")),
        ) {
            (Some(reason), Some(code)) => format!("{reason} ({code})"),
            (Some(reason), None) => reason,
            (None, Some(code)) => code,
            (None, None) => match failing {
                Some((key, status)) => format!("{key}={status}"),
                None => text(fields.get("ErrorDetail")).unwrap_or_default(),
            },
        }
    };
    truncate_chars(&error, MAX_ERROR_CHARS)
}

/// A non-empty string (trimmed) or a number, as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
