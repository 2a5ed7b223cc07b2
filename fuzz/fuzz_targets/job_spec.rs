//! Job specs: any JSON as `start-task`'s input goes through the real handler (over in-memory
//! FSx, DataSync and lane table). It starts exactly one task, answers `InvalidJob` naming a
//! field, or (a runner context naming a lane this fake table holds no lease of) `LeaseLost`
//! before any start; a job that validates survives the JSON round trip the state machine puts it
//! through, unchanged and still valid. Seeds: `events/start-task/*.json`.
#![no_main]

use ferry::fakes::{FakeLanes, FakeTasks};
use ferry::FerryError;
use ferry::config::{ENV_LANE_TABLE, FromEnvironment, Laned, TaskConfig};
use ferry::domain::job::{JobSpec, Limits};
use ferry::handlers::start_task;
use ferry_fuzz::block_on;
use lambda_runtime::{Context, LambdaEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let lookup = |name: &str| (name == ENV_LANE_TABLE).then(|| "ferry-lanes".to_owned());
    let Ok(config) = Laned::<TaskConfig>::from_lookup(lookup) else {
        panic!("the default configuration is invalid");
    };
    let ports = (FakeTasks::new(), FakeLanes::new());
    let fake = &ports.0;
    let result = block_on(start_task::handle(
        &ports,
        &config,
        LambdaEvent::new(input.clone(), Context::default()),
    ));
    match result {
        Ok(output) => {
            assert_eq!(fake.tasks().len(), 1, "one start, one task");
            let key = &output.idempotency_key;
            assert!(
                (1..=63).contains(&key.len())
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
                "ClientRequestToken {key:?}"
            );
        }
        Err(FerryError::InvalidJob(invalid)) => {
            assert_eq!(
                fake.start_calls(),
                0,
                "an invalid job reached the service: {invalid}"
            );
            assert!(!invalid.errors.is_empty());
            for e in &invalid.errors {
                // A field named "" (`{"": 1}`) is reported by its (empty) name.
                let named = !e.field.is_empty() || e.problem.contains("field ``");
                assert!(named && !e.problem.is_empty(), "{e:?}");
            }
        }
        Err(FerryError::LeaseLost { .. }) => {
            assert_eq!(fake.start_calls(), 0, "a runner without its lease started a task");
        }
        Err(e) => panic!("expected InvalidJob, got {} ({e})", e.error_type()),
    }
    let Some(job) = input.get("job") else { return };
    let Ok(spec) = serde_json::from_value::<JobSpec>(job.clone()) else {
        return;
    };
    for limits in [Limits::default(), Limits { max_paths: 100 }] {
        if spec.clone().validate(&limits).is_ok() {
            let text = serde_json::to_string(&spec).unwrap_or_default();
            let again: JobSpec = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a valid job does not parse back: {e}: {text}"));
            assert_eq!(again, spec);
            assert!(again.validate(&limits).is_ok());
        }
    }
});
