//! Any bytes as an `s3-trigger` invocation: parsed as JSON and handed to the real handler over
//! in-memory Step Functions and S3, then checked by the oracle (nothing lost, nothing outside
//! its route). Seeds: `events/s3-trigger/*.json`.
#![no_main]

use std::sync::OnceLock;

use ferry::fakes::{FakeLanes, FakeTrigger};
use ferry::trigger::config::TriggerConfig;
use ferry::handlers::s3_trigger;
use ferry_fuzz::{block_on, oracle};
use lambda_runtime::{Context, LambdaEvent};
use libfuzzer_sys::fuzz_target;

static CONFIG: OnceLock<TriggerConfig> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = CONFIG.get_or_init(oracle::trigger_config);
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let output = block_on(s3_trigger::handle(
        &ports,
        config,
        LambdaEvent::new(event.clone(), Context::default()),
    ));
    if let Err(violation) =
        oracle::check_trigger(
            config,
            &event,
            &output,
            oracle::Effects {
                executions: &oracle::queued(&ports.1),
                written: &ports.0.objects(),
                recorded: &oracle::recorded(&ports.1),
            },
        )
    {
        panic!("{violation}");
    }
});
