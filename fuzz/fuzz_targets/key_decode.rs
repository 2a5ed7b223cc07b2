//! S3 notification key decoding: any text decodes to a key of 1-1,024 bytes or a clear error
//! (empty, not UTF-8, too long); and any key, encoded as S3 encodes it, decodes to itself.
#![no_main]

use ferry::trigger::key::{KeyError, MAX_KEY_BYTES, check_key, decode_notification_key};
use ferry_fuzz::oracle::form_encode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(encoded) = std::str::from_utf8(data) {
        match decode_notification_key(encoded) {
            Ok(key) => {
                assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES, "{key:?}");
                assert_eq!(check_key(key.clone()), Ok(key));
            }
            Err(KeyError::Empty) => assert!(encoded.is_empty()),
            Err(KeyError::TooLong { bytes }) => assert!(bytes > MAX_KEY_BYTES),
            Err(KeyError::NotUtf8 { encoded: shown }) => {
                assert!(encoded.contains('%'));
                assert!(shown.chars().count() <= 200);
            }
        }
    }
    let key = String::from_utf8_lossy(data);
    match decode_notification_key(&form_encode(&key)) {
        Ok(decoded) => assert_eq!(decoded, key),
        Err(KeyError::Empty) => assert!(key.is_empty()),
        Err(KeyError::TooLong { bytes }) => assert_eq!(bytes, key.len()),
        Err(e) => panic!("{key:?} encoded as S3 does fails to decode: {e}"),
    }
});
