//! What adaptive polling costs against a fixed 30-second poll, in Step Functions state
//! transitions and Lambda invocations: `cargo run --release -p ferry --example poll_cost
//! [-- --json <file>]`.
//!
//! The number of polls comes from [`ferry::poll::simulate`] (the schedule `task-status` really
//! returns). Transitions and invocations are counted by walking the deployed definition,
//! `statemachine/ferry.asl.json`, state by state: every state entered is one transition (the
//! start and the final `Succeed` included), every `Task` state one Lambda invocation, and each
//! `Choice` is decided by evaluating its rules against the execution's state. The simulated
//! execution is a lane runner's happy path with one run: the take finds one job, the task is
//! created when `start-task` returns (age 0), no retry happens, the last poll sees it done and it
//! succeeded; the next take finds nothing and the runner releases the lane. A runner that hands
//! over (history past 15,000 events) goes on as its next execution, counted together. The fixed
//! schedule runs the same definition with every wait set to 30 s.

use std::process::ExitCode;

use ferry::domain::poll::{self, PollCost, PollSettings};
use serde::Serialize;
use serde_json::{Value, json};

const DEFINITION: &str = include_str!("../../statemachine/ferry.asl.json");
/// The function whose Task state is one status poll.
const STATUS_FUNCTION: &str = "${TaskStatusFunctionArn}";
/// The lane function (take, started, finish, release, hand_over).
const LANE_FUNCTION: &str = "${LaneFunctionArn}";
const FIXED_INTERVAL_SECONDS: u64 = 30;
/// A walk longer than this is a loop the simulation does not understand.
const MAX_STATES: u64 = 1_000_000;

/// What one execution costs.
#[derive(Debug, Clone, Copy, Serialize)]
struct ExecutionCost {
    polls: u64,
    transitions: u64,
    lambda_invocations: u64,
    detection_delay_seconds: u64,
}

#[derive(Debug, Serialize)]
struct Row {
    task: &'static str,
    task_seconds: u64,
    fixed_30s: ExecutionCost,
    /// Without progress counters (the conservative case: the wait is 20 % of the task's age).
    adaptive: ExecutionCost,
    /// With progress growing linearly (waits also shortened to the estimated time left).
    adaptive_linear_progress: ExecutionCost,
    /// The larger of the two adaptive figures, in % of the fixed poll's.
    transitions_percent_of_fixed: f64,
    lambda_invocations_percent_of_fixed: f64,
}

/// Walks the definition from `StartAt` to a terminal state for an execution whose task is seen
/// done at status poll number `polls`, and counts what it costs.
fn walk(definition: &Value, polls: u64) -> Result<(u64, u64), String> {
    let states = definition["States"]
        .as_object()
        .ok_or("the definition has no States")?;
    let mut name = definition["StartAt"]
        .as_str()
        .ok_or("the definition has no StartAt")?
        .to_owned();
    // The parts of the execution's state document that Choice rules read on the happy path.
    let mut document = json!({"history": {"events": 0}});
    let (mut transitions, mut invocations, mut polled, mut takes) = (0u64, 0u64, 0u64, 0u64);
    // After a hand-over, the next execution's first take adopts the run in flight.
    let mut adopting = false;
    loop {
        let state = states
            .get(&name)
            .ok_or_else(|| format!("state {name} is not defined"))?;
        transitions += 1;
        if transitions > MAX_STATES {
            return Err(format!("no end after {MAX_STATES} states"));
        }
        let next = match state["Type"].as_str() {
            Some("Task") => {
                invocations += 1;
                let function = &state["Parameters"]["FunctionName"];
                let action = state["Parameters"]["Payload"]["action"].as_str();
                if function == STATUS_FUNCTION {
                    polled += 1;
                    let done = polled >= polls;
                    document["status"] = json!({
                        "done": done,
                        "timed_out": false,
                        "cancel_asked": false,
                        "phase": if done { "succeeded" } else { "running" },
                    });
                } else if function == LANE_FUNCTION && action == Some("take") {
                    takes += 1;
                    let run = match (takes, adopting) {
                        (1, false) => json!({"state": "claimed"}),
                        (_, true) => json!({"state": "started"}),
                        _ => Value::Null,
                    };
                    adopting = false;
                    document["taken"] = json!({"run": run, "expired": []});
                } else if function == LANE_FUNCTION && action == Some("release") {
                    document["release"] = json!({"again": false});
                } else if name == "StartTask" {
                    document["started"] = json!({"busy": false, "timed_out": false});
                }
                state["Next"].as_str()
            }
            Some("Pass") => {
                pass(&name, state, &mut document)?;
                state["Next"].as_str()
            }
            Some("Wait") => state["Next"].as_str(),
            Some("Choice") => choose(state, &document)?,
            // A runner that handed over goes on as its next execution (counted together).
            Some("Succeed") if name == "HandedOver" => {
                adopting = true;
                document["history"]["events"] = json!(0);
                definition["StartAt"].as_str()
            }
            Some("Succeed" | "Fail") => return Ok((transitions, invocations)),
            other => return Err(format!("state {name}: unsupported type {other:?}")),
        };
        name = next
            .ok_or_else(|| format!("state {name} has no next state"))?
            .to_owned();
    }
}

/// What the Pass states on the happy path do to the document: the history counters
/// (`States.MathAdd($.history.events, n)`) and `Prepare`'s fresh state for a run.
fn pass(name: &str, state: &Value, document: &mut Value) -> Result<(), String> {
    if let Some(add) = state["Parameters"]["events.$"].as_str() {
        let n: u64 = add
            .strip_prefix("States.MathAdd($.history.events, ")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("state {name}: unsupported counter {add}"))?;
        let events = document["history"]["events"].as_u64().unwrap_or(0);
        document["history"]["events"] = json!(events + n);
    } else if name == "Prepare" {
        document["run"] = document["taken"]["run"].clone();
        document["flags"] = json!({"cancel_requested": false, "timed_out": false});
    }
    Ok(())
}

/// The `Next` of the first matching rule, or the `Default`.
fn choose<'a>(state: &'a Value, document: &Value) -> Result<Option<&'a str>, String> {
    for rule in state["Choices"]
        .as_array()
        .ok_or("a Choice without Choices")?
    {
        if matches(rule, document)? {
            return Ok(rule["Next"].as_str());
        }
    }
    Ok(state["Default"].as_str())
}

/// Evaluates the rule forms Ferry's definition uses; anything else is reported, not guessed.
fn matches(rule: &Value, document: &Value) -> Result<bool, String> {
    if let Some(all) = rule["And"].as_array() {
        return all
            .iter()
            .try_fold(true, |ok, r| Ok(ok && matches(r, document)?));
    }
    if let Some(any) = rule["Or"].as_array() {
        return any
            .iter()
            .try_fold(false, |ok, r| Ok(ok || matches(r, document)?));
    }
    if rule["Not"].is_object() {
        return matches(&rule["Not"], document).map(|m| !m);
    }
    let path = rule["Variable"]
        .as_str()
        .ok_or_else(|| format!("unsupported Choice rule {rule}"))?;
    let value = lookup(path, document)?;
    if let Some(present) = rule.get("IsPresent") {
        return Ok(present.as_bool() == Some(value.is_some()));
    }
    if let Some(null) = rule.get("IsNull") {
        return Ok(null.as_bool() == Some(value.is_some_and(Value::is_null)));
    }
    for operator in ["BooleanEquals", "StringEquals"] {
        if let Some(expected) = rule.get(operator) {
            return Ok(value == Some(expected));
        }
    }
    if let Some(bound) = rule["NumericGreaterThanEquals"].as_f64() {
        return Ok(value.and_then(Value::as_f64).is_some_and(|v| v >= bound));
    }
    Err(format!("unsupported Choice rule {rule}"))
}

/// The value at a path of the forms the definition uses: `$.a.b`, `$.a.b[0]`.
fn lookup<'a>(path: &str, document: &'a Value) -> Result<Option<&'a Value>, String> {
    let mut value = Some(document);
    for key in path
        .strip_prefix("$.")
        .ok_or_else(|| format!("unsupported path {path}"))?
        .split('.')
    {
        let (key, index) = match key.split_once('[') {
            Some((key, rest)) => {
                let index = rest
                    .strip_suffix(']')
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| format!("unsupported path {path}"))?;
                (key, Some(index))
            }
            None => (key, None),
        };
        value = value.and_then(|v| v.get(key));
        if let Some(index) = index {
            value = value.and_then(|v| v.get(index));
        }
    }
    Ok(value)
}

fn cost(definition: &Value, polls: &PollCost) -> Result<ExecutionCost, String> {
    let (transitions, lambda_invocations) = walk(definition, polls.polls)?;
    Ok(ExecutionCost {
        polls: polls.polls,
        transitions,
        lambda_invocations,
        detection_delay_seconds: polls.detection_delay_seconds,
    })
}

fn percent(part: u64, whole: u64) -> f64 {
    (1000.0 * part as f64 / whole as f64).round() / 10.0
}

fn rows(definition: &Value) -> Result<Vec<Row>, String> {
    let settings = PollSettings::default();
    let tasks = [
        ("5 min", 300),
        ("1 h", 3_600),
        ("6 h", 21_600),
        ("24 h", 86_400),
    ];
    tasks
        .into_iter()
        .map(|(task, seconds)| {
            let fixed = cost(
                definition,
                &poll::fixed_cost(FIXED_INTERVAL_SECONDS, seconds),
            )?;
            let adaptive = cost(definition, &poll::simulate(settings, seconds, false))?;
            let linear = cost(definition, &poll::simulate(settings, seconds, true))?;
            let worst = |f: fn(&ExecutionCost) -> u64| f(&adaptive).max(f(&linear));
            Ok(Row {
                task,
                task_seconds: seconds,
                transitions_percent_of_fixed: percent(worst(|c| c.transitions), fixed.transitions),
                lambda_invocations_percent_of_fixed: percent(
                    worst(|c| c.lambda_invocations),
                    fixed.lambda_invocations,
                ),
                fixed_30s: fixed,
                adaptive,
                adaptive_linear_progress: linear,
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--json" => Some(path.clone()),
        _ => {
            eprintln!("usage: poll_cost [--json <file>]");
            return ExitCode::from(2);
        }
    };
    let result = serde_json::from_str::<Value>(DEFINITION)
        .map_err(|e| format!("statemachine/ferry.asl.json: {e}"))
        .and_then(|definition| rows(&definition));
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("poll_cost: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "| task | polls: fixed 30 s / adaptive (no progress / linear progress) | state transitions: fixed / adaptive | adaptive vs fixed | Lambda invocations: fixed / adaptive | worst detection delay |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let (a, l) = (&r.adaptive, &r.adaptive_linear_progress);
        println!(
            "| {} | {} / {} / {} | {} / {} | {:.1} % | {} / {} | {} s |",
            r.task,
            r.fixed_30s.polls,
            a.polls,
            l.polls,
            r.fixed_30s.transitions,
            a.transitions.max(l.transitions),
            r.transitions_percent_of_fixed,
            r.fixed_30s.lambda_invocations,
            a.lambda_invocations.max(l.lambda_invocations),
            a.detection_delay_seconds.max(l.detection_delay_seconds),
        );
    }

    if let Some(path) = json_path {
        let document = json!({
            "method": "polls from ferry::poll::simulate (default bounds 15-600 s); transitions and Lambda invocations counted by walking statemachine/ferry.asl.json (happy path, no retries, every state entered = 1 transition)",
            "fixed_interval_seconds": FIXED_INTERVAL_SECONDS,
            "poll_settings": PollSettings::default(),
            "tasks": rows,
        });
        let text = match serde_json::to_string_pretty(&document) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("poll_cost: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("poll_cost: writing {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
