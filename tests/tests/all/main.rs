//! The workspace-level tests, one test binary with a module each. As nine binaries each linked
//! the whole SDK: building them from a clean test package took 167 s, one binary 23 s
//! (`cargo clean -p ferry-tests && cargo test -p ferry-tests --no-run`, dependencies built;
//! 2026-12-07, 2 cores, load about 3).
//!
//! - `access`: the function URL's verified caller and the access policy;
//! - `fixtures`: every fixture in `events/` through its real handler;
//! - `hostile_input`: hostile batches, keys and job specs (proptest), never a panic;
//! - `lanes`, `wake`: the lane protocol and DataSync wake-ups through the handlers;
//! - `lane_contract`: the lane ports' contract, on `FakeLanes` and (from the e2e tests) on
//!   `AwsLanes`;
//! - `limits`: the largest legal inputs against every AWS limit;
//! - `links`: submit's preflight against a file system's links to S3;
//! - `notify`: completion reports;
//! - `s3_trigger`: uploads to jobs;
//! - `security`: logs, IAM derived from the code, encryption;
//! - `simulation`: the lane protocol's deterministic simulation (`make simulate`).

mod access;
mod fixtures;
mod hostile_input;
mod lane_contract;
mod lanes;
mod limits;
mod links;
mod notify;
mod s3_trigger;
mod security;
mod simulation;
mod wake;
