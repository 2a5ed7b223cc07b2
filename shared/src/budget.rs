//! Byte budgets: what every payload that crosses a boundary may weigh, measured in one place.
//!
//! AWS refuses a payload past a hard limit, and some refusals cannot be handled at all: a Step
//! Functions state whose input or output passes 256 KiB fails its execution with
//! `States.DataLimitExceeded`, which no `Retry` or `Catch` takes, not even `States.ALL`
//! (Step Functions developer guide, "Handling errors in Step Functions workflows"; "Step
//! Functions service quotas"). So Ferry never lets AWS discover a size: each boundary has a
//! budget below its limit, every payload is measured here from its real serialized bytes, and
//! the check happens before the write or the answer. `docs/limits.md` lists every boundary,
//! its budget and what a user sees there.
//!
//! | boundary | AWS limit | counted as |
//! |---|---|---|
//! | a state's input or output, an execution's input, a task token's output | 256 KiB | UTF-8 bytes of the JSON text |
//! | a synchronous Lambda answer | 6 MB | bytes |
//! | a DynamoDB item | 400 KB | UTF-8 attribute names and values |
//! | a DynamoDB transaction | 100 actions, 4 MB | the items' sizes |
//! | an SNS or SQS message | 256 KiB | UTF-8 bytes, attributes included |
//! | a DataSync filter | 102,400 | UTF-16 code units ([`crate::domain::validate::filter_len`]) |
//!
//! Ferry's own budgets follow from those: a job spec (and a run's merged spec) fits one
//! DynamoDB item with room for the record around it ([`SPEC_BYTES`]); the runner's state
//! carries references, never specs, so each function's answer to the state machine stays far
//! below the state quota ([`ANSWER_BYTES`]).

use std::fmt;

use serde::Serialize;

/// Step Functions: the most a state's input or output, an execution's input or a task's
/// result may be, in UTF-8 bytes of the JSON text (256 KiB; "Step Functions service quotas").
pub const STATE_BYTES: usize = 262_144;

/// Lambda: the most a synchronous invocation's request or response may be (6 MB; Lambda
/// developer guide, "Lambda quotas").
pub const LAMBDA_SYNC_BYTES: usize = 6_291_456;

/// DynamoDB: the most one item may be, attribute names and values in UTF-8 (400 KB; Developer
/// Guide, "Item sizes and formats", "Service, account, and table quotas").
pub const ITEM_BYTES: usize = 409_600;

/// DynamoDB `TransactWriteItems`: at most 100 actions (API reference).
pub const TRANSACTION_ACTIONS: usize = 100;

/// DynamoDB `TransactWriteItems`: "The aggregate size of the items in the transaction cannot
/// exceed 4 MB" (API reference). Counted as 4,000,000 bytes, the smaller reading of "MB".
pub const TRANSACTION_BYTES: usize = 4_000_000;

/// SNS `Publish` and SQS `SendMessage`: 262,144 bytes of UTF-8, message attributes included
/// (SNS API reference, Publish).
pub const MESSAGE_BYTES: usize = 262_144;

/// The most a job spec may weigh as JSON, and so a run's merged spec: it is stored in one
/// DynamoDB item (the job's, the run's), which also holds the record around it (ids, the
/// source, the collapse root, a cancel request: at most [`RECORD_OVERHEAD_BYTES`]).
pub const SPEC_BYTES: usize = 320 * 1024;

/// What a lane-table item holds besides a spec, at most: keys and attribute names, ids, the
/// lane, a job's source and collapse root, a cancel request and its copy beside the record.
/// `SPEC_BYTES + RECORD_OVERHEAD_BYTES` stays within [`ITEM_BYTES`], which the worst-case tests
/// check on real items.
pub const RECORD_OVERHEAD_BYTES: usize = ITEM_BYTES - SPEC_BYTES;

/// The most any function answers the state machine with. The runner's state holds a few of
/// these answers at once (the take, the start, the status) and references, so it stays far
/// below [`STATE_BYTES`]; the worst-case tests add the largest of each.
pub const ANSWER_BYTES: usize = 32 * 1024;

/// UTF-8 bytes of `value` as compact JSON (what Step Functions, DynamoDB's `doc_json` and the
/// Lambda runtime see), counted without building the text.
pub fn json_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and plain data always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// UTF-8 bytes of `text` as one JSON string, quotes and escapes included.
pub fn json_str_bytes(text: &str) -> usize {
    json_bytes(text)
}

/// UTF-8 bytes of `items` as a JSON array of strings (`["a","b"]`).
pub fn json_list_bytes<'a>(items: impl IntoIterator<Item = &'a str>) -> usize {
    let (count, sum) = items.into_iter().fold((0usize, 0usize), |(n, sum), s| {
        (n + 1, sum + json_str_bytes(s))
    });
    2 + sum + count.saturating_sub(1)
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A payload over its budget: what it is, what it weighs, what it may weigh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Oversize {
    /// What was measured, for people: `job.paths`, `the take answer`, `run run-… record`.
    pub what: String,
    pub bytes: usize,
    pub limit: usize,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} bytes, over its budget of {} bytes",
            self.what,
            thousands(self.bytes),
            thousands(self.limit)
        )
    }
}

/// `Ok(bytes)` when `value` weighs at most `limit` bytes as JSON.
pub fn check<T: Serialize + ?Sized>(
    what: impl Into<String>,
    value: &T,
    limit: usize,
) -> Result<usize, Oversize> {
    within(what, json_bytes(value), limit)
}

/// `Ok(bytes)` when `bytes` is at most `limit`.
pub fn within(what: impl Into<String>, bytes: usize, limit: usize) -> Result<usize, Oversize> {
    if bytes <= limit {
        Ok(bytes)
    } else {
        Err(Oversize {
            what: what.into(),
            bytes,
            limit,
        })
    }
}

/// Splits `groups` (consecutive groups of actions that must share a transaction, each as its
/// number of actions and its bytes) into consecutive ranges of groups, each within
/// [`TRANSACTION_ACTIONS`] and [`TRANSACTION_BYTES`]. A group alone past a limit gets a range of
/// its own (the caller's budgets keep groups far smaller).
pub fn transactions(groups: &[(usize, usize)]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut actions, mut bytes) = (0, 0, 0);
    for (i, &(a, b)) in groups.iter().enumerate() {
        if i > start && (actions + a > TRANSACTION_ACTIONS || bytes + b > TRANSACTION_BYTES) {
            ranges.push(start..i);
            (start, actions, bytes) = (i, 0, 0);
        }
        actions += a;
        bytes += b;
    }
    if start < groups.len() {
        ranges.push(start..groups.len());
    }
    ranges
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bytes_are_the_utf8_bytes_of_the_compact_text() {
        let value = serde_json::json!({"a": "é\"\u{1}", "b": [1, 2]});
        assert_eq!(
            json_bytes(&value),
            serde_json::to_string(&value).unwrap().len()
        );
        assert_eq!(json_str_bytes("é"), 4);
        assert_eq!(
            json_str_bytes("\u{1}"),
            8,
            "a control character escapes to \\u0001"
        );
        assert_eq!(json_str_bytes("日本"), 8);
    }

    #[test]
    fn list_bytes_match_serde() {
        for list in [vec![], vec!["a"], vec!["a", "日本", "x\"y"]] {
            assert_eq!(
                json_list_bytes(list.iter().copied()),
                serde_json::to_string(&list).unwrap().len()
            );
        }
    }

    #[test]
    fn an_oversize_names_what_its_size_and_its_limit() {
        let err = check("job.paths", &"x".repeat(100), 50).unwrap_err();
        assert_eq!(err.bytes, 102);
        assert_eq!(
            err.to_string(),
            "job.paths is 102 bytes, over its budget of 50 bytes"
        );
        assert_eq!(check("ok", &"x", 3), Ok(3));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn transactions_stay_within_actions_and_bytes() {
        // 60 jobs of 3 actions: 33 to a transaction.
        let small = vec![(3, 2_000); 60];
        assert_eq!(transactions(&small), vec![0..33, 33..60]);
        // Heavy jobs: the bytes run out first (5 × 700 KB).
        let heavy = vec![(3, 700_000); 12];
        let ranges = transactions(&heavy);
        assert_eq!(ranges, vec![0..5, 5..10, 10..12]);
        for range in transactions(&[(3, 1), (3, 3_999_000), (99, 1), (2, 1)]) {
            let (a, b) = [(3, 1), (3, 3_999_000), (99, 1), (2, 1)][range]
                .iter()
                .fold((0, 0), |(a, b), &(x, y)| (a + x, b + y));
            assert!(a <= TRANSACTION_ACTIONS && b <= TRANSACTION_BYTES);
        }
        assert!(transactions(&[]).is_empty());
        assert_eq!(
            transactions(&[(150, 1)]),
            vec![0..1],
            "alone past a limit: its own"
        );
    }

    #[test]
    fn budgets_nest() {
        const {
            assert!(SPEC_BYTES + RECORD_OVERHEAD_BYTES <= ITEM_BYTES);
            assert!(ANSWER_BYTES * 4 < STATE_BYTES);
            assert!(ITEM_BYTES * 9 < TRANSACTION_BYTES);
        }
    }
}
