use super::*;
use crate::notify::digest::Digest;

fn read(body: &str, cut: bool, max_paths: usize) -> Digest {
    read_bytes(body.as_bytes(), cut, max_paths)
}

fn read_bytes(body: &[u8], cut: bool, max_paths: usize) -> Digest {
    let mut builder = DigestBuilder::new(max_paths);
    read_detailed_report(body, cut, &mut builder);
    builder.finish()
}

/// Reads `body` cut after every byte, asserting that no cut makes an entry unreadable and
/// that failures only grow; returns the failures of the last (whole) read, and whether every
/// read said the report was truncated.
fn read_cut_everywhere(body: &[u8]) -> (u64, bool) {
    let (mut last, mut all_truncated) = (0, true);
    for end in 0..=body.len() {
        let d = read_bytes(&body[..end], true, 10);
        assert_eq!(
            d.unreadable_lines,
            0,
            "cut at {end}: {:?}",
            String::from_utf8_lossy(&body[..end])
        );
        assert!(d.failed >= last, "cut at {end}");
        all_truncated &= d.report_truncated;
        last = d.failed;
    }
    (last, all_truncated)
}

/// The failed paths a digest kept, with their errors.
fn paths(d: &Digest) -> Vec<(&str, &str)> {
    d.paths
        .iter()
        .map(|p| (p.path.as_str(), p.error.as_str()))
        .collect()
}

/// The user guide's examples (Basic and Enhanced mode), with more entries.
fn sample() -> String {
    r#"{
    "TaskExecutionId": "exec-0a12a34ab112233ab",
    "Transferred": [{
        "RelativePath": "/object1.txt",
        "SrcMetadata": {"Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z",
                        "Atime": "2022-01-07T16:59:26.136114671Z", "Uid": 0, "Gid": 0, "Mode": "0644"},
        "Overwrite": "False",
        "DstS3VersionId": "jtqRtX3jN4J2G8k0sFSGYK1f35KqpAVP",
        "TransferTimestamp": "2022-01-07T16:59:45.747270957Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "SUCCESS"
    }, {
        "RelativePath": "/dir/object2.txt",
        "SrcMetadata": {"Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z"},
        "Overwrite": "False",
        "TransferTimestamp": "2022-01-07T16:59:45.747270957Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "FAILED",
        "FailureReason": "S3 Get Object Failed",
        "FailureCode": 40974
    }, {
        "RelativePath": "object3.txt",
        "SourceMetadata": {"Type": "Object", "ContentSize": 6, "LastModified": "2022-10-07T20:48:32Z",
                           "SystemMetadata": {"ContentType": "binary/octet-stream", "ETag": "\"3a7c\"",
                                              "ServerSideEncryption": "AES256"},
                           "UserMetadata": {}, "Tags": []},
        "Overwrite": "False",
        "TransferTimestamp": "2022-10-09T16:05:11.134040717Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "FAILED",
        "ErrorCode": "AccessDenied",
        "ErrorDetail": "User: arn:aws:sts::111222333444:assumed-role/AWSDataSyncS3Bucket/AwsSync-loc-0b3017fc4ba4a2d8d is not authorized to perform: kms:GenerateDataKey"
    }, {
        "RelativePath": "object4.txt",
        "TransferStatus": "FAILED",
        "ErrorCode": "AccessDenied"
    }, {
        "RelativePath": "/dir",
        "SrcMetadata": {"Type": "Directory", "ContentSize": 0},
        "TransferStatus": "SUCCESS"
    }]
}"#
        .to_owned()
}

#[test]
fn a_documented_report_counts_its_failures_and_skips_its_successes() {
    let d = read(&sample(), false, 10);
    assert_eq!(d.failed, 3);
    assert_eq!(d.unreadable_lines, 0);
    assert!(!d.report_truncated);
    assert_eq!(
        paths(&d),
        [
            ("/dir/object2.txt", "S3 Get Object Failed (40974)"),
            ("object3.txt", "AccessDenied"),
            ("object4.txt", "AccessDenied"),
        ]
    );
}

#[test]
fn errors_are_grouped_by_code() {
    let d = read(&sample(), false, 1);
    assert_eq!(d.by_error.len(), 2);
    assert_eq!(d.by_error["AccessDenied"], 2);
    assert_eq!(d.by_error["S3 Get Object Failed (40974)"], 1);
    assert_eq!(d.paths.len(), 1);
    assert!(d.paths_truncated);
}

#[test]
fn verified_and_other_lists_are_read_and_errors_fall_back_sensibly() {
    let body = r#"{"TaskExecutionId": "exec-1",
          "Verified": [
            {"RelativePath": "/a", "SrcChecksum": "SHA256:aa", "DstChecksum": "SHA256:aa",
             "DstMetadata": {"Type": "Regular"}, "VerifyStatus": "SUCCESS"},
            {"RelativePath": "/b", "SrcChecksum": "SHA256:aa", "DstChecksum": "SHA256:bb", "VerifyStatus": "FAILED"},
            {"RelativePath": "/c", "VerifyStatus": "failed", "ErrorCode": "  ", "ErrorDetail": "checksum mismatch"}
          ],
          "Skipped": [
            {"RelativePath": "/d", "SkippedStatus": "SUCCESS", "SkippedReason": "unchanged"},
            {"RelativePath": "/e", "SkippedStatus": "FAILED", "FailureReason": "Permission denied"}
          ],
          "Deleted": [
            {"RelativePath": "/f", "DeleteStatus": "SUCCESS"},
            {"RelativePath": "/g", "FailureCode": "12"},
            {"RelativePath": "/h", "DeleteStatus": "PENDING"},
            {"RelativePath": "/i", "ErrorDetail": "something went wrong"}
          ]}"#;
    let d = read(body, false, 10);
    assert_eq!(
        paths(&d),
        [
            ("/b", "VerifyStatus=FAILED"),
            ("/c", "VerifyStatus=failed"),
            ("/e", "Permission denied"),
            ("/g", "12"),
            ("/i", "something went wrong"),
        ]
    );
    assert_eq!(d.unreadable_lines, 0);
}

#[test]
fn long_error_codes_are_cut() {
    let code = "é".repeat(500);
    let body = format!(
        r#"{{"Transferred": [{{"RelativePath": "/a", "TransferStatus": "FAILED", "ErrorCode": "{code}"}}]}}"#
    );
    let d = read(&body, false, 10);
    assert_eq!(d.paths[0].error.chars().count(), MAX_ERROR_CHARS + 1);
}

/// The sample up to its fourth entry (the first three, two failures, are whole), read with the
/// given `cut`: its failures, unreadable lines and whether it was truncated.
fn read_up_to_the_fourth_entry(cut: bool) -> (u64, u64, bool) {
    let body = sample();
    let at = body.find("object4.txt").expect("sample has object4");
    let d = read(&body[..at], cut, 10);
    (d.failed, d.unreadable_lines, d.report_truncated)
}

#[test]
fn a_cut_report_keeps_the_entries_before_the_cut() {
    // Cut inside the fourth entry: the first three (two failures) count.
    assert_eq!(read_up_to_the_fourth_entry(true), (2, 0, true));
    // Cut anywhere: never a panic, never an unreadable entry, failures only grow.
    assert_eq!(read_cut_everywhere(sample().as_bytes()), (3, true));
}

#[test]
fn an_incomplete_report_that_was_not_cut_is_unreadable_after_its_good_entries() {
    assert_eq!(read_up_to_the_fourth_entry(false), (2, 1, false));
}

#[test]
fn garbage_is_counted_not_fatal() {
    for body in [
        "",
        "   ",
        "not json",
        "42",
        "null",
        "\"x\"",
        "{\"Transferred\": [",
        "}{",
        "[",
    ] {
        let d = read(body, false, 10);
        assert_eq!(d.failed, 0, "{body:?}");
        assert_eq!(d.unreadable_lines, 1, "{body:?}");
    }
    // Entries of the wrong shape are unreadable one by one; the good ones still count.
    let d = read(
        r#"{"Transferred": [1, "x", null, [], {}, {"RelativePath": 5, "TransferStatus": "FAILED"},
                {"RelativePath": "", "TransferStatus": "FAILED"}, {"RelativePath": "/no-status"},
                {"RelativePath": "/ok", "TransferStatus": "FAILED", "ErrorCode": "E"}],
                "Other": {"nested": [1, 2]}, "Count": 3, "Flag": true, "Nothing": null}"#,
        false,
        10,
    );
    assert_eq!(d.failed, 1);
    assert_eq!(d.unreadable_lines, 8);
    // Deep nesting stops at serde_json's recursion limit instead of overflowing the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(read(&deep, false, 10).unreadable_lines, 1);
    let deep = format!("{{\"Transferred\": [{}", "{\"a\":".repeat(100_000));
    assert_eq!(read(&deep, false, 10).unreadable_lines, 1);
    // Random bytes: no panic.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = br#"{}[]:,"\ 0123456789.eE+-truefalsnulRelativePathTransferStatusFAILED"#;
    for _ in 0..2000 {
        let len = (seed % 200) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let b = (seed >> 33) as u8;
            bytes.push(if b.is_multiple_of(4) {
                b
            } else {
                alphabet[b as usize % alphabet.len()]
            });
        }
        let _ = read_bytes(&bytes, seed.is_multiple_of(2), 5);
    }
}

#[test]
fn a_cut_anywhere_in_any_kind_of_value_is_a_cut_not_an_error() {
    // Every JSON token kind, escapes and multi-byte characters, cut at every byte.
    let body = "{\"TaskExecutionId\": \"exec-1\", \"Transferred\": [\
            {\"RelativePath\": \"/caf\u{e9}/\\u00e9\\\"q\\\\\", \"Overwrite\": false, \"Flag\": true,\
             \"None\": null, \"Neg\": -1.5e-3, \"Big\": 18446744073709551615, \"List\": [1, {\"a\": []}],\
             \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E\u{1F600}\"},\
            {\"RelativePath\": \"/b\", \"TransferStatus\": \"FAILED\", \"FailureCode\": 1.0}]}";
    assert_eq!(read_cut_everywhere(body.as_bytes()).0, 2);
    let d = read(body, false, 10);
    assert_eq!(d.paths[0].path, "/caf\u{e9}/\u{e9}\"q\\");
    assert_eq!(d.paths[0].error, "E\u{1F600}");
    assert_eq!(d.paths[1].error, "1.0");
}

#[test]
fn a_list_of_entries_and_json_lines_are_read_too() {
    let d = read(
        r#"[{"RelativePath": "/a", "TransferStatus": "FAILED", "ErrorCode": "E1"}, {"RelativePath": "/b", "TransferStatus": "SUCCESS"}]"#,
        false,
        10,
    );
    assert_eq!(d.failed, 1);
    let d = read(
        "{\"RelativePath\": \"/a\", \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E1\", \"SrcMetadata\": {\"Type\": \"Regular\"}}\n\
             {\"RelativePath\": \"/b\", \"TransferStatus\": \"SUCCESS\"}\n\
             {\"Transferred\": [{\"RelativePath\": \"/c\", \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E2\"}]}\n",
        false,
        10,
    );
    assert_eq!(d.failed, 2);
    assert_eq!(d.unreadable_lines, 0);
    assert_eq!(d.by_error["E1"], 1);
    assert_eq!(d.by_error["E2"], 1);
}

#[test]
fn a_large_report_is_read_entry_by_entry() {
    const N: usize = 100_000;
    let mut body = String::with_capacity(N * 160);
    body.push_str(r#"{"TaskExecutionId": "exec-0a12a34ab112233ab", "Transferred": ["#);
    for i in 0..N {
        if i > 0 {
            body.push(',');
        }
        if i.is_multiple_of(10) {
            body.push_str(&format!(
                    r#"{{"RelativePath": "/data/f{i}", "SrcMetadata": {{"Type": "Regular", "ContentSize": {i}}}, "TransferStatus": "FAILED", "ErrorCode": "E{}"}}"#,
                    i % 3
                ));
        } else {
            body.push_str(&format!(
                    r#"{{"RelativePath": "/data/f{i}", "SrcMetadata": {{"Type": "Regular", "ContentSize": {i}}}, "TransferStatus": "SUCCESS"}}"#
                ));
        }
    }
    body.push_str("]}");
    let d = read(&body, false, 50);
    assert_eq!(d.failed, (N / 10) as u64);
    assert_eq!(d.by_error.values().sum::<u64>(), (N / 10) as u64);
    assert_eq!(d.by_error.len(), 3);
    assert_eq!(d.paths.len(), 50);
    assert_eq!(d.paths[0].path, "/data/f0");
    assert_eq!(d.paths[1].path, "/data/f10");
    assert!(d.paths_truncated);
    assert_eq!(d.unreadable_lines, 0);
    // The same report cut in half: the first half's failures count.
    let half = body.len() / 2;
    let d = read(&body[..half], true, 50);
    assert!(d.failed > 4_000 && d.failed < 6_000, "{}", d.failed);
    assert_eq!(d.unreadable_lines, 0);
}
