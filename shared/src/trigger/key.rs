//! Object keys as S3 notifications carry them.
//!
//! S3 event notifications URL-encode object keys the way HTML forms do: a space arrives as `+`,
//! everything else outside the unreserved set as `%XX` ("red flower.jpg" arrives as
//! "red+flower.jpg"; S3 user guide, "Event message structure"). So `+` must become a space
//! *before* percent-decoding (a literal `+` arrives as `%2B`). `aws_lambda_events` has a
//! `url_decoded_key` field that S3 never fills; the same trap is reported across runtimes
//! (aws-lambda-go#82, aws-lambda-dotnet#1182, boto3#1204).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// S3 object keys are at most 1,024 bytes of UTF-8 (S3 user guide, "Naming objects").
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a key from a notification cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("object key is empty")]
    Empty,
    #[error("object key {encoded:?} is not UTF-8 once percent-decoded")]
    NotUtf8 { encoded: String },
    #[error("object key is {bytes} bytes once decoded; S3 keys are at most {MAX_KEY_BYTES}")]
    TooLong { bytes: usize },
}

/// Decodes a key from an S3 notification (`+` is a space, then percent-decoding).
pub fn decode_notification_key(encoded: &str) -> Result<String, KeyError> {
    let spaced: Cow<'_, str> = if encoded.contains('+') {
        Cow::Owned(encoded.replace('+', " "))
    } else {
        Cow::Borrowed(encoded)
    };
    let decoded = percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| KeyError::NotUtf8 {
            encoded: encoded.chars().take(200).collect(),
        })?
        .into_owned();
    check_key(decoded)
}

/// Checks a key that arrived unencoded (EventBridge's `detail.object.key`).
pub fn check_key(key: String) -> Result<String, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong { bytes: key.len() });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts each `(key as S3 notifies it, key)`.
    fn decodes(cases: &[(&str, &str)]) {
        for &(notified, key) in cases {
            assert_eq!(
                decode_notification_key(notified).unwrap(),
                key,
                "{notified:?}"
            );
        }
    }

    #[test]
    fn plus_is_a_space_and_percent_2b_is_a_plus() {
        decodes(&[
            ("red+flower.jpg", "red flower.jpg"),
            ("c%2B%2B/a+b%2Bc", "c++/a b+c"),
        ]);
    }

    #[test]
    fn percent_sequences_decode_to_utf8() {
        decodes(&[
            ("100%25+done", "100% done"),
            ("caf%C3%A9/%E6%97%A5%E6%9C%AC.txt", "café/日本.txt"),
            ("dt%3D2026-11-21/_SUCCESS", "dt=2026-11-21/_SUCCESS"),
            ("a%2Fb", "a/b"),
        ]);
    }

    #[test]
    fn malformed_percent_sequences_are_kept_literally() {
        // A '%' not followed by two hex digits is not an escape (WHATWG percent-decode).
        decodes(&[("50%off", "50%off"), ("end%", "end%")]);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        for bad in ["bad%FF%FE", "%C3"] {
            let decoded = decode_notification_key(bad);
            assert!(
                matches!(decoded, Err(KeyError::NotUtf8 { .. })),
                "{bad}: {decoded:?}"
            );
        }
    }

    #[test]
    fn length_is_checked_after_decoding() {
        let max = "a".repeat(MAX_KEY_BYTES);
        assert_eq!(decode_notification_key(&max).unwrap().len(), MAX_KEY_BYTES);
        // 1,024 encoded characters of "%C3%A9" decode to fewer bytes: fine.
        assert!(decode_notification_key(&"%C3%A9".repeat(170)).is_ok());
        let over = "é".repeat(513); // 1,026 bytes
        assert_eq!(check_key(over), Err(KeyError::TooLong { bytes: 1026 }));
        assert_eq!(decode_notification_key(""), Err(KeyError::Empty));
    }
}
