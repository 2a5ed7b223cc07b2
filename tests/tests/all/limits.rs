//! Worst cases at every boundary (issue 24): the largest legal inputs (longest paths and keys,
//! multi-byte scripts and JSON escapes, the most paths, the longest sources and tags, the most
//! jobs in a run) through the real handlers and runner steps, each payload measured against
//! its budget (`shared/src/budget.rs`). A job too heavy to keep is refused by name at the edge;
//! anything that gets in fits everywhere after.
//!
//! The DynamoDB items the adapter writes are measured in `shared/src/aws/lanes/tests.rs`; the
//! harness enforces every AWS limit end to end (`local/tests/test_limits.py`).

use std::sync::atomic::{AtomicUsize, Ordering};

use ferry::budget::{
    ANSWER_BYTES, LAMBDA_SYNC_BYTES, SPEC_BYTES, STATE_BYTES, json_bytes, json_str_bytes,
};
use ferry::config::{NotifyConfig, SubmitConfig, TaskConfig};
use ferry::domain::job::Limits;
use ferry::domain::status::{Counts, Failure, TaskHandle};
use ferry::error::MAX_ERROR_MESSAGE_BYTES;
use ferry::fakes::{FakeLanes, FakeNotify, FakeTasks, FakeTrigger};
use ferry::handlers::{cancel_task, lane, notify, start_task, submit, task_status};
use ferry::ids::{StateMachineArn, TopicArn};
use ferry::lanes::MAX_JOBS_PER_RUN;
use ferry::ports::LaneView;
use ferry_tests::{STATE_MACHINE, lane_config, laned};
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use serde_json::{Value, json};

const FS: &str = "fs-0123456789abcdef0";
const DS_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ferry-reports";

/// The heaviest payload seen at each boundary, printed at the end (`--nocapture`) for the
/// record in `docs/limits.md`.
static LARGEST_ANSWER: AtomicUsize = AtomicUsize::new(0);
static LARGEST_STATE: AtomicUsize = AtomicUsize::new(0);
static LARGEST_SPEC: AtomicUsize = AtomicUsize::new(0);

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn invocation(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    LambdaEvent::new(payload, context)
}

/// The task functions' configuration with the path cap raised to the API's 100.
fn task_config() -> TaskConfig {
    TaskConfig {
        limits: Limits { max_paths: 100 },
        ..TaskConfig::default()
    }
}

fn submit_config() -> SubmitConfig {
    SubmitConfig {
        tasks: task_config(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: None,
    }
}

/// `count` export paths of `chars` characters of `script` each (distinct by their prefix).
fn paths(count: usize, chars: usize, script: char) -> Vec<String> {
    (0..count)
        .map(|i| {
            let head = format!("d{i:03}/");
            let fill = chars.saturating_sub(head.len()).max(1);
            format!("{head}{}", script.to_string().repeat(fill))
        })
        .collect()
}

/// A job of `kind` (0: export, 1: DataSync, 2: release) filled with `script`: `count` paths or
/// patterns of `chars` characters, and 49 tags of the longest keys and values.
fn job(kind: usize, count: usize, chars: usize, script: char) -> Value {
    let tag = |n: usize, len: usize| {
        let letter = if script.is_alphanumeric() {
            script
        } else {
            'x'
        };
        format!("{n:02}{}", letter.to_string().repeat(len - 2))
    };
    let tags: serde_json::Map<String, Value> =
        (0..49).map(|n| (tag(n, 128), json!(tag(n, 256)))).collect();
    let mut job = match kind {
        0 => json!({"name": "heaviest-export", "kind": "fsx_export", "file_system_id": FS,
                    "paths": paths(count, chars, script), "tags": tags}),
        1 => {
            let patterns: Vec<String> = paths(count, chars.min(1_000), script)
                .into_iter()
                .map(|p| format!("/{p}"))
                .collect();
            json!({"name": "heaviest-sync", "kind": "datasync", "task_arn": DS_TASK,
                   "includes": patterns, "tags": tags})
        }
        _ => json!({"name": "heaviest-release", "kind": "fsx_release", "file_system_id": FS,
                    "paths": paths(count, chars, script), "release": {"days_since_last_access": 0},
                    "tags": tags}),
    };
    // A rerun's link at its longest (`ferry retry`).
    job["retry_of"] = json!(LONGEST_RUN_ID.as_str());
    job
}

/// The longest run id a job's `retry_of` takes.
static LONGEST_RUN_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "run-{}",
        "r".repeat(ferry::domain::validate::MAX_RUN_ID_CHARS - 4)
    )
});

fn bytes_of(answer: &Value) -> usize {
    json_bytes(answer)
}

fn within_answer(what: &str, answer: &Value) -> usize {
    let bytes = bytes_of(answer);
    assert!(bytes <= ANSWER_BYTES, "{what}: {bytes} bytes");
    LARGEST_ANSWER.fetch_max(bytes, Ordering::Relaxed);
    bytes
}

/// The runner's state as the definition builds it when it reaches `Notify` after a cancel that
/// failed and a report that could not be published (every field it can hold at once): the
/// references, the start and status answers, and three caught errors whose causes carry a
/// function's longest error message.
fn state_at_notify(take: &Value, start: &Value, status: &Value, notified: &Value) -> Value {
    let cause = json!({"errorType": "AwsService",
                       "errorMessage": "é".repeat(MAX_ERROR_MESSAGE_BYTES / 2)})
    .to_string();
    let error = json!({"Error": "AwsService", "Cause": cause});
    json!({
        "lane": take["lane"], "owner": "lane-0123456789abcdef-1796601835020-0123456789ab",
        "generation": 12, "history": {"events": 14_999},
        "run": take["run"], "abandon": take["abandon"],
        "runner": {"lane": take["lane"], "owner": "lane-0123456789abcdef-1796601835020-0123456789ab",
                   "run": take["run"]["id"]},
        "flags": {"cancel_requested": true, "timed_out": true},
        "started": {"task": start["task"], "busy": false, "canceled": false, "timed_out": false,
                    "next_poll_seconds": 15},
        "status": {"phase": status["phase"], "lifecycle": status["lifecycle"],
                   "done": true, "timed_out": true, "next_poll_seconds": 15, "full": status,
                   "cancel_asked": true, "await": null},
        "notified": notified,
        "error": error, "cancel_error": error, "notify_error": error,
    })
}

/// One job through every runner step: submit, take, start, a status with the longest failure
/// the service can give, a cancel, the report. Returns `Err` (naming the field) when `submit`
/// refuses it at the edge.
async fn through_the_runner(spec: Value, occurrence: &str) -> Result<(), String> {
    let lanes = FakeLanes::new();
    let runners = FakeTrigger::new();
    let input = json!({"job": spec, "occurrence": occurrence});
    let submitted = submit::handle(&(runners, lanes.clone()), &submit_config(), event(input))
        .await
        .map_err(|e| e.to_string())?;
    let submitted = serde_json::to_value(submitted).unwrap();
    assert!(bytes_of(&submitted) <= LAMBDA_SYNC_BYTES);
    let lane_id = submitted["lane"].clone();
    let owner = submitted["runner"]["owner"].as_str().unwrap().to_owned();
    let config = laned(task_config());

    let take = lane::handle(
        &(lanes.clone(), FakeTrigger::new()),
        &config,
        invocation(
            json!({"action": "take", "lane": lane_id, "owner": owner, "generation": 0}),
            "take-1",
        ),
    )
    .await
    .unwrap();
    let mut take = serde_json::to_value(take).unwrap();
    within_answer("take", &take);
    take["lane"] = lane_id.clone();
    let run = lanes.runs().pop().unwrap();
    LARGEST_SPEC.fetch_max(json_bytes(&run.spec), Ordering::Relaxed);
    assert!(json_bytes(&run.spec) <= SPEC_BYTES);
    let runner = json!({"lane": lane_id, "owner": owner, "run": run.id});

    let tasks = FakeTasks::new();
    let ports = (tasks.clone(), lanes.clone());
    let start = start_task::handle(&ports, &config, event(json!({"runner": runner})))
        .await
        .unwrap();
    let start = serde_json::to_value(start).unwrap();
    within_answer("start", &start);
    let handle: TaskHandle = serde_json::from_value(start["task"].clone()).unwrap();
    let failure = Failure {
        message: Some("m".repeat(100_000)),
        error_code: Some("文".repeat(10_000)),
        error_detail: Some("\u{1}".repeat(100_000)),
    };
    let ended = if handle.is_fsx() { "FAILED" } else { "ERROR" };
    tasks.set(&handle, ended, Counts::default(), Some(failure));
    let input = json!({"task": handle, "cancel_requested": true, "runner": runner});
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    let status = serde_json::to_value(status).unwrap();
    within_answer("status", &status);
    let cancel = cancel_task::handle(&ports, &config, event(input))
        .await
        .unwrap();
    within_answer("cancel", &serde_json::to_value(cancel).unwrap());

    let notify_config = laned(NotifyConfig {
        topic_arn: TopicArn::parse(TOPIC).ok(),
        ..NotifyConfig::default()
    });
    let report = json!({"execution": owner, "task": handle, "status": status,
                        "timed_out": true, "runner": runner});
    let notified = notify::handle(&(FakeNotify::new(), lanes), &notify_config, event(report))
        .await
        .unwrap();
    let notified = serde_json::to_value(notified).unwrap();
    within_answer("notify", &notified);

    let state = state_at_notify(&take, &start, &status, &notified);
    let bytes = bytes_of(&state);
    LARGEST_STATE.fetch_max(bytes, Ordering::Relaxed);
    assert!(bytes <= STATE_BYTES, "the state at Notify: {bytes} bytes");
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any job up to the API's limits in any script: refused at the edge naming its heaviest
    /// field, its weight and the budget, or within every budget from the queue to the report.
    #[test]
    fn the_largest_legal_jobs_fit_every_boundary_or_are_refused_by_name(
        kind in 0usize..3,
        count in 1usize..=100,
        chars in 1usize..=4_096,
        script in prop::sample::select(vec!['a', 'é', '文', '\u{1F600}', '\t', '"', '\u{1}']),
    ) {
        let occurrence = format!(
            "arn:aws:scheduler:us-east-1:111122223333:schedule/default/x@{}",
            "\u{1F600}".repeat(900)
        );
        let spec = job(kind, count, chars, script);
        let weight = json_bytes(&spec);
        match runtime().block_on(through_the_runner(spec, &occurrence)) {
            Ok(()) => prop_assert!(weight <= SPEC_BYTES + 1_000, "{weight}"),
            Err(refused) => {
                // DataSync's filter limit (UTF-16 units) may come first; else the byte budget.
                prop_assert!(refused.contains("bytes as JSON") || refused.contains("102400")
                             || refused.contains("paths"), "{refused}");
                prop_assert!(weight > 100_000, "refused at {weight} bytes: {refused}");
            }
        }
    }
}

#[test]
fn the_heaviest_job_of_each_kind_that_fits_goes_through() {
    // Just under the budget, multi-byte: 20 export paths of 4,096 CJK characters (12 KB each)
    // and 49 tags of the longest keys and values (56 KB).
    for (kind, count, chars) in [(0, 20, 4_096), (1, 80, 1_000), (2, 20, 4_096)] {
        let spec = job(kind, count, chars, '文');
        let weight = json_bytes(&spec);
        assert!(
            weight > 280_000 && weight <= SPEC_BYTES,
            "kind {kind}: {weight}"
        );
        runtime()
            .block_on(through_the_runner(
                spec,
                "arn:aws:scheduler:us-east-1:1:schedule/default/x@t",
            ))
            .unwrap();
    }
    eprintln!(
        "largest: spec {} B, answer {} B, state {} B",
        LARGEST_SPEC.load(Ordering::Relaxed),
        LARGEST_ANSWER.load(Ordering::Relaxed),
        LARGEST_STATE.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn a_run_of_the_most_jobs_with_the_longest_sources_travels_by_reference() {
    // 2,000 jobs (a run's most), each from a schedule occurrence of 1,024 four-byte characters
    // and each a rerun with the longest `retry_of`: their sources alone weigh 8 MB, which no
    // state, item or answer could carry.
    let lanes = FakeLanes::new();
    let runners = FakeTrigger::new();
    let mut owner = String::new();
    for i in 0..MAX_JOBS_PER_RUN {
        let occurrence = format!("{i:05}{}", "\u{1F600}".repeat(1_019));
        assert_eq!(occurrence.chars().count(), 1_024);
        let spec = json!({"name": "imports", "kind": "fsx_import", "file_system_id": FS,
                          "paths": [format!("s3://ferry-data/incoming/{}/", i % 20)],
                          "retry_of": LONGEST_RUN_ID.as_str()});
        let submitted = submit::handle(
            &(runners.clone(), lanes.clone()),
            &submit_config(),
            event(json!({"job": spec, "occurrence": occurrence})),
        )
        .await
        .unwrap();
        let submitted = serde_json::to_value(submitted).unwrap();
        if i == 0 {
            owner = submitted["runner"]["owner"].as_str().unwrap().to_owned();
        }
    }
    let lane_id = json!(format!("fsx:{FS}"));
    let take = lane::handle(
        &(lanes.clone(), FakeTrigger::new()),
        &laned(task_config()),
        invocation(
            json!({"action": "take", "lane": lane_id, "owner": owner, "generation": 0}),
            "take-1",
        ),
    )
    .await
    .unwrap();
    let take = serde_json::to_value(take).unwrap();
    assert_eq!(take["run"]["jobs"], MAX_JOBS_PER_RUN);
    let bytes = within_answer("take of 2,000 jobs", &take);
    assert!(bytes < 1_000, "a reference: {bytes} bytes");
    let run = lanes.runs().pop().unwrap();
    let members = lanes.members(&run.lane, &run.id, usize::MAX).await.unwrap();
    assert_eq!(members.len(), MAX_JOBS_PER_RUN);
    let sources: usize = members.iter().map(|m| json_str_bytes(&m.source)).sum();
    assert!(sources > 8_000_000, "{sources}");
    // Each member keeps the rerun's link (for the report), at its longest.
    assert!(
        members
            .iter()
            .all(|m| m.retry_of.as_deref() == Some(LONGEST_RUN_ID.as_str()))
    );
    assert!(json_bytes(&run) < 2_000, "the run's record counts its jobs");
}

// ---------------------------------------------------------------------------------------
// The template's parameters against the configuration's rules (issue 31, item 8)
// ---------------------------------------------------------------------------------------

fn template() -> serde_norway::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// The values CloudFormation lets `parameter` take at its edges: `AllowedValues`; a number's
/// `MinValue`, `MaxValue` and `Default`; for a string with an `AllowedPattern`, those of a
/// spread of whole numbers (and the default) that the pattern accepts, as CloudFormation
/// matches it (the whole value).
fn edges(parameter: &serde_norway::Value) -> Vec<String> {
    use serde_norway::Value as Y;
    let constrained = ["AllowedValues", "AllowedPattern", "MinValue", "MaxValue"];
    if !constrained.iter().any(|k| parameter.get(*k).is_some()) {
        return Vec::new(); // free text (routes, names): not a rule of the configuration
    }
    let text = |v: &Y| match v {
        Y::Number(n) => n.to_string(),
        Y::String(s) => s.clone(),
        other => panic!("a parameter value that is not a scalar: {other:?}"),
    };
    if let Some(Y::Sequence(values)) = parameter.get("AllowedValues") {
        return values.iter().map(text).collect();
    }
    let default = parameter.get("Default").map(text);
    if let Some(pattern) = parameter.get("AllowedPattern").and_then(Y::as_str) {
        let whole = regex_lite::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        let spread = [
            0u64, 1, 9, 10, 59, 60, 599, 600, 601, 3_600, 86_399, 86_400, 86_401,
        ];
        let mut found: Vec<String> = spread.iter().map(u64::to_string).collect();
        found.extend(default);
        found.retain(|v| whole.is_match(v));
        return found;
    }
    let mut found: Vec<String> = ["MinValue", "MaxValue"]
        .iter()
        .filter_map(|k| parameter.get(*k).map(text))
        .collect();
    found.extend(default);
    found
}

#[test]
fn every_parameter_value_the_template_allows_is_one_every_function_starts_with() {
    // Issue 31, item 8: PollMinSeconds above PollMaxSeconds, a LeaseSeconds not above
    // PollMaxSeconds or a DataSyncFallbackPollSeconds of 1-9 deployed, then stopped every
    // function at cold start. Every combination of every parameter's edges must start.
    use ferry::config::{FromEnvironment, LaneConfig, Laned};
    use ferry::trigger::config::TriggerConfig;
    let template = template();
    let variables = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    let mut varied: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in variables {
        let serde_norway::Value::Tagged(tagged) = value else {
            continue;
        };
        let Some(parameter) = tagged.value.as_str().filter(|_| tagged.tag == "Ref") else {
            continue;
        };
        if let Some(spec) = template["Parameters"].get(parameter) {
            let values = edges(spec);
            if !values.is_empty() {
                varied.push((name.as_str().unwrap().to_owned(), values));
            }
        }
    }
    let names: Vec<&str> = varied.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "FERRY_POLL_MIN_SECONDS",
        "FERRY_LEASE_SECONDS",
        "FERRY_LOG_LEVEL",
    ] {
        assert!(names.contains(&expected), "{expected} not among {names:?}");
    }
    let routes = r#"[{"name": "r", "bucket": "ferry-data", "prefix": "in/",
        "job": {"name": "r", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}]"#;
    let fixed = [
        ("FERRY_LANE_TABLE", "ferry-lanes"),
        ("FERRY_STATE_MACHINE_ARN", STATE_MACHINE),
        ("FERRY_ROUTES", routes),
        ("FERRY_TOPIC_ARN", TOPIC),
    ];
    let mut combination = vec![0usize; varied.len()];
    let mut tried = 0;
    loop {
        let env: Vec<(&str, &str)> = varied
            .iter()
            .zip(&combination)
            .map(|((name, values), &i)| (name.as_str(), values[i].as_str()))
            .chain(fixed)
            .collect();
        let lookup = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        fn starts<C: FromEnvironment>(
            lookup: impl Fn(&str) -> Option<String>,
            env: &[(&str, &str)],
        ) -> C {
            C::from_lookup(lookup).unwrap_or_else(|e| panic!("{env:?}: {e}"))
        }
        let lanes: LaneConfig = starts(lookup, &env);
        let tasks: TaskConfig = starts(lookup, &env);
        assert!(lanes.lease_seconds > tasks.poll.max_seconds, "{env:?}");
        assert!(tasks.poll.min_seconds <= tasks.poll.max_seconds, "{env:?}");
        starts::<Laned<NotifyConfig>>(lookup, &env);
        starts::<SubmitConfig>(lookup, &env);
        starts::<TriggerConfig>(lookup, &env);
        tried += 1;
        // The next combination, odometer-style.
        let Some(digit) = (0..varied.len()).find(|&d| combination[d] + 1 < varied[d].1.len())
        else {
            break;
        };
        combination[digit] += 1;
        combination[..digit].iter_mut().for_each(|c| *c = 0);
    }
    eprintln!("{tried} combinations of {names:?}");

    // A function's own numeric parameters (notify's report caps), one at a time.
    let mut checked = 0;
    let resources = template["Resources"].as_mapping().unwrap();
    for function in resources
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
    {
        let Some(own) = function["Properties"]["Environment"]["Variables"].as_mapping() else {
            continue;
        };
        for (name, value) in own {
            let serde_norway::Value::Tagged(tagged) = value else {
                continue;
            };
            let parameter = tagged.value.as_str().unwrap_or_default();
            let Some(spec) = template["Parameters"].get(parameter) else {
                continue;
            };
            let name = name.as_str().unwrap();
            for edge in edges(spec) {
                let env = [(name, edge.as_str())];
                let lookup = |n: &str| {
                    env.iter()
                        .chain(&fixed)
                        .find(|(k, _)| *k == n)
                        .map(|(_, v)| (*v).to_owned())
                };
                let said = |e: ferry::config::ConfigError| -> () { panic!("{name}={edge}: {e}") };
                Laned::<NotifyConfig>::from_lookup(lookup)
                    .map(|_| ())
                    .unwrap_or_else(said);
                SubmitConfig::from_lookup(lookup)
                    .map(|_| ())
                    .unwrap_or_else(said);
                TriggerConfig::from_lookup(lookup)
                    .map(|_| ())
                    .unwrap_or_else(said);
                checked += 1;
            }
        }
    }
    assert!(tried > 10_000);
    assert!(
        checked >= 6,
        "notify's two report caps, three edges each: {checked}"
    );
}
