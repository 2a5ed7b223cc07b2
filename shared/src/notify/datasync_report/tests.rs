use super::*;

const ARN: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
const TASK: &str = "task-0123456789abcdef0";
const EXEC: &str = "exec-0a12a34ab112233ab";

fn prefix(location: &str, arn: &str) -> (String, String) {
    let location = S3Url::parse(location, 4096).unwrap_or_else(|e| panic!("{location}: {e}"));
    let arn = DataSyncExecutionArn::parse(arn).unwrap_or_else(|e| panic!("{e}"));
    let prefix = detailed_report_prefix(&location, &arn);
    (prefix.bucket().to_string(), prefix.key().to_owned())
}

#[test]
fn the_prefix_follows_the_documented_layout() {
    let layout = format!("Detailed-Reports/{TASK}/{EXEC}/");
    for (location, folder) in [
        ("s3://reports/ferry/", "ferry/"),
        ("s3://reports/ferry", "ferry/"),
        ("s3://reports//ferry//", "ferry/"),
        ("s3://reports/", ""),
        ("s3://reports", ""),
        ("s3://reports/a/b/", "a/b/"),
    ] {
        assert_eq!(
            prefix(location, ARN),
            ("reports".to_owned(), format!("{folder}{layout}")),
            "{location}"
        );
    }
    let gov = "arn:aws-us-gov:datasync:us-gov-west-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
    assert_eq!(prefix("s3://reports/x", gov).0, "reports");
}

#[test]
fn report_files_are_told_from_the_summary() {
    let dir = format!("ferry/Detailed-Reports/{TASK}/{EXEC}");
    for name in [
        "files-transferred-v1-00001-0a123abc12d3b0e4f.json",
        "files-verified-v1-00001-00000000000000000.json",
        "files-verified-v1-00002-0a123abc12d3b0e4f.JSON",
        "files-skipped-v1-00001-0a123abc12d3b0e4f.json",
        "files-deleted-v1-00001-0a123abc12d3b0e4f.json",
    ] {
        assert!(
            is_detailed_report_key(&format!("{dir}/{EXEC}.{name}")),
            "{name}"
        );
    }
    for key in [
        format!("ferry/Summary-Reports/{TASK}/{EXEC}/{EXEC}.summary-v1.json"),
        format!("{dir}/{EXEC}.summary-v1.json"),
        format!("{dir}/"),
        format!("{dir}/{EXEC}.files-transferred-v1-00001-0a123abc12d3b0e4f.json.gz"),
        format!("{dir}/{EXEC}.files-transferred-v1-00001-0a123abc12d3b0e4f.csv"),
        format!("{dir}/{EXEC}.files-.json"),
        format!("{dir}/notes.files-transferred.json"),
        format!("{dir}/readme.txt"),
        format!("{dir}/.json"),
        String::new(),
    ] {
        assert!(!is_detailed_report_key(&key), "{key}");
    }
}
