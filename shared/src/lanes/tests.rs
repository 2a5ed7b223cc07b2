use serde_json::json;

use super::*;
use crate::domain::job::Limits;

fn job(value: serde_json::Value) -> ValidJob {
    serde_json::from_value::<JobSpec>(value)
        .unwrap()
        .validate(&Limits::default())
        .unwrap()
}

const FS: &str = "fs-0123456789abcdef0";
const TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";

#[test]
fn a_job_runs_in_its_file_system_or_task_lane() {
    let fsx = job(json!({"name": "e", "kind": "fsx_export", "file_system_id": FS}));
    let lane = LaneId::of(&fsx);
    assert_eq!(lane.to_string(), format!("fsx:{FS}"));
    assert_eq!(LaneId::parse(&lane.to_string()), Ok(lane));
    let ds = job(json!({"name": "s", "kind": "datasync", "task_arn": TASK}));
    let lane = LaneId::of(&ds);
    assert_eq!(lane.to_string(), format!("datasync:{TASK}"));
    assert_eq!(LaneId::parse(&lane.to_string()), Ok(lane));
    for bad in [
        "",
        "fsx:",
        "fsx:fs-1",
        "s3:bucket",
        &format!("datasync:{FS}"),
    ] {
        assert!(LaneId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_same_job_from_the_same_source_is_one_job() {
    let spec = job(json!({"name": "e", "kind": "fsx_export", "file_system_id": FS})).into_spec();
    let uploads = JobSource::Uploads([7; 32]);
    let id = JobId::derive(&uploads, &spec);
    assert_eq!(id, JobId::derive(&uploads, &spec));
    assert_eq!(JobId::parse(id.as_str()), Ok(id.clone()));
    assert_ne!(id, JobId::derive(&JobSource::Uploads([8; 32]), &spec));
    let schedule =
        JobSource::Schedule("arn:aws:scheduler:…:schedule/default/x@2026-11-30T00:00:00Z".into());
    assert_ne!(id, JobId::derive(&schedule, &spec));
    let mut other = spec.clone();
    other.name = "f".into();
    assert_ne!(
        JobId::derive(&schedule, &spec),
        JobId::derive(&schedule, &other)
    );
    // A caller's id is the job: another spec under it is the same job.
    let caller = JobSource::Caller("nightly-2026-11-30".into());
    assert_eq!(
        JobId::derive(&caller, &spec),
        JobId::derive(&caller, &other)
    );
    for bad in ["", "job-", "job-XYZ", &format!("job-{}", "a".repeat(55))] {
        assert!(JobId::parse(bad).is_err(), "{bad}");
    }
}
