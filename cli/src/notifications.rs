//! `ferry notifications --routes FILE (--stack NAME | --queue-arn ARN) [--bucket B]
//! [--existing FILE]`: the S3 event notification configuration a bucket needs so that exactly
//! the uploads the routes take reach the upload queue: one queue configuration per route (and
//! per suffix), filtered by its prefix and suffix, so Ferry's own manifests, reports and every
//! other key in the bucket cost no invocation and no "unmatched" record.
//!
//! `PutBucketNotificationConfiguration` replaces a bucket's whole configuration (S3 API
//! reference): given the current one (`--existing`, from `aws s3api
//! get-bucket-notification-configuration`), the output keeps everything of it but an earlier
//! Ferry configuration of the same queue, and refuses what S3 would refuse: a configuration of
//! another destination whose prefix and suffix overlap one of Ferry's for object creation
//! (S3 user guide, "Configuring event notifications using object key name filtering":
//! overlapping prefixes and suffixes for the same event type are an error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::trigger::routes::{KeyFilter, Routes};
use serde_json::{Value, json};

use crate::Failure;
use crate::deploy::{ENV_STACK, stack_outputs};

/// The stack outputs: the upload queue, and the buckets allowed to send to it.
const OUTPUT_QUEUE: &str = "UploadQueueArn";
pub const OUTPUT_BUCKETS: &str = "DataBucketNames";

#[derive(Debug, Clone, Args)]
pub struct NotificationsArgs {
    /// The routes (what FERRY_ROUTES or the RoutesS3Url object holds).
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,
    /// The stack: its UploadQueueArn output is the queue, and its DataBucketNames output the
    /// buckets the queue accepts notifications from
    #[arg(long, env = ENV_STACK, value_name = "NAME")]
    pub stack: Option<String>,
    /// The upload queue (the stack's UploadQueueArn output), instead of --stack
    #[arg(long, value_name = "ARN")]
    pub queue_arn: Option<String>,
    /// The bucket to configure (needed when the routes name several)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The bucket's current notification configuration (JSON, as
    /// `aws s3api get-bucket-notification-configuration` prints it): kept and merged
    #[arg(long, value_name = "FILE")]
    pub existing: Option<PathBuf>,
}

/// Prints the bucket's configuration (JSON) on standard output, and how to apply it on
/// standard error.
pub async fn run(args: &NotificationsArgs) -> Result<ExitCode, Failure> {
    let limits = TaskConfig::from_env()
        .map_err(|e| Failure::new(e.to_string()))?
        .limits;
    let text = std::fs::read_to_string(&args.routes)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", args.routes.display())))?;
    let routes = Routes::from_json(&text, &limits)
        .map_err(|e| Failure::new(format!("{}: invalid routes: {e}", args.routes.display())))?;
    let queue = match (
        &args.queue_arn,
        args.stack.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(arn), _) => arn.clone(),
        (None, Some(stack)) => {
            let [queue, buckets] = stack_outputs(stack, &[OUTPUT_QUEUE, OUTPUT_BUCKETS])
                .await?
                .try_into()
                .map_err(|_| Failure::new("two outputs asked, not two given"))?;
            let unreachable = buckets_that_cannot_send(&routes, &buckets);
            if !unreachable.is_empty() {
                return Err(Failure::new(format!(
                    "{}: the stack's queue accepts notifications from {buckets} only: {}",
                    args.routes.display(),
                    unreachable.join("; ")
                )));
            }
            queue
        }
        (None, None) => {
            return Err(Failure::new(format!(
                "no queue: give --stack NAME ({ENV_STACK}) or --queue-arn ARN (the stack's {OUTPUT_QUEUE} output)"
            )));
        }
    };
    let existing = match &args.existing {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))?;
            let text = if text.trim().is_empty() { "{}" } else { &text };
            serde_json::from_str(text)
                .map_err(|e| Failure::new(format!("{}: not JSON: {e}", path.display())))?
        }
        None => json!({}),
    };
    let (bucket, filters) = chosen(routes.notification_filters(), args.bucket.as_deref())?;
    let configuration = merged(existing, &queue, &filters)?;
    let pretty = serde_json::to_string_pretty(&configuration).unwrap_or_default();
    println!("{pretty}");
    eprintln!(
        "apply with: aws s3api put-bucket-notification-configuration --bucket {bucket} --notification-configuration file://<this output>{}",
        if args.existing.is_none() {
            " (it REPLACES the bucket's configuration: pass --existing to keep what it has)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Each route whose bucket is not among `allowed` (comma-separated), said for people.
pub fn buckets_that_cannot_send(routes: &Routes, allowed: &str) -> Vec<String> {
    let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
    (0..routes.len())
        .map(|i| routes.get(i))
        .filter(|route| !allowed.contains(&route.bucket.as_str()))
        .map(|route| {
            format!(
                "route {:?} names bucket {}, whose notifications the queue refuses (add it to the stack's DataBucketName)",
                route.name, route.bucket
            )
        })
        .collect()
}

/// The bucket asked for (or the only one), and its filters.
fn chosen(
    by_bucket: Vec<(String, Vec<KeyFilter>)>,
    bucket: Option<&str>,
) -> Result<(String, Vec<KeyFilter>), Failure> {
    let names: Vec<String> = by_bucket.iter().map(|(b, _)| b.clone()).collect();
    match bucket {
        Some(wanted) => by_bucket
            .into_iter()
            .find(|(b, _)| b == wanted)
            .ok_or_else(|| {
                Failure::new(format!(
                    "no route names bucket {wanted} (the routes name {})",
                    names.join(", ")
                ))
            }),
        None if by_bucket.len() == 1 => Ok(by_bucket.into_iter().next().unwrap_or_default()),
        None => Err(Failure::new(format!(
            "the routes name several buckets ({}): choose one with --bucket",
            names.join(", ")
        ))),
    }
}

/// S3's queue configuration for one filter.
fn configuration(queue: &str, filter: &KeyFilter) -> Value {
    let mut rules = Vec::new();
    if !filter.prefix.is_empty() {
        rules.push(json!({"Name": "prefix", "Value": filter.prefix}));
    }
    if let Some(suffix) = &filter.suffix {
        rules.push(json!({"Name": "suffix", "Value": suffix}));
    }
    let mut config = json!({"Id": filter.id, "QueueArn": queue, "Events": ["s3:ObjectCreated:*"]});
    if !rules.is_empty() {
        config["Filter"] = json!({"Key": {"FilterRules": rules}});
    }
    config
}

/// The existing configuration without an earlier Ferry configuration of `queue`, with Ferry's
/// added; an error naming every configuration S3 would find overlapping.
fn merged(mut existing: Value, queue: &str, filters: &[KeyFilter]) -> Result<Value, Failure> {
    let Some(object) = existing.as_object_mut() else {
        return Err(Failure::new("--existing: expected a JSON object"));
    };
    // What `get-bucket-notification-configuration` prints but `put` does not take.
    object.remove("ResponseMetadata");
    let queues = object
        .entry("QueueConfigurations")
        .or_insert_with(|| json!([]));
    if let Some(list) = queues.as_array_mut() {
        list.retain(|c| c["QueueArn"] != queue);
    }
    let mut clashes = Vec::new();
    for list in [
        "QueueConfigurations",
        "TopicConfigurations",
        "LambdaFunctionConfigurations",
    ] {
        for other in object
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for filter in filters.iter().filter(|f| overlaps(other, f)) {
                clashes.push(format!(
                    "{} ({list}) overlaps {} for object creation",
                    other["Id"].as_str().unwrap_or("(no Id)"),
                    filter.id
                ));
            }
        }
    }
    if !clashes.is_empty() {
        return Err(Failure::new(format!(
            "S3 would refuse the configuration: {}; narrow one of them",
            clashes.join("; ")
        )));
    }
    let ours = filters.iter().map(|f| configuration(queue, f));
    if let Some(list) = object
        .get_mut("QueueConfigurations")
        .and_then(Value::as_array_mut)
    {
        list.extend(ours);
    }
    Ok(existing)
}

/// True when `other` (an S3 configuration) also fires on object creation for some key
/// `filter` takes: its prefix and suffix rules each compatible with the filter's.
fn overlaps(other: &Value, filter: &KeyFilter) -> bool {
    let creates = other["Events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|e| e.starts_with("s3:ObjectCreated:"));
    let rule = |name: &str| -> String {
        other["Filter"]["Key"]["FilterRules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| {
                r["Name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|r| r["Value"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let (prefix, suffix) = (rule("prefix"), rule("suffix"));
    let ours = filter.suffix.as_deref().unwrap_or("");
    creates
        && (prefix.starts_with(&filter.prefix) || filter.prefix.starts_with(&prefix))
        && (suffix.ends_with(ours) || ours.ends_with(&suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::from_json(
            &json!([
                {"name": "h5", "bucket": "ferry-data", "prefix": "in/", "suffixes": [".h5"],
                 "job": {"name": "i", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}},
                {"name": "all", "bucket": "ferry-other", "prefix": "",
                 "job": {"name": "a", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}
            ])
            .to_string(),
            &ferry::domain::job::Limits::default(),
        )
        .unwrap()
    }

    const QUEUE: &str = "arn:aws:sqs:us-east-1:111122223333:ferry-uploads";

    #[test]
    fn a_configuration_per_route_kept_beside_what_the_bucket_has() {
        let (bucket, filters) =
            chosen(routes().notification_filters(), Some("ferry-data")).unwrap();
        assert_eq!(bucket, "ferry-data");
        let existing = json!({
            "QueueConfigurations": [
                {"Id": "old-ferry", "QueueArn": QUEUE, "Events": ["s3:ObjectCreated:*"]},
                {"Id": "audit", "QueueArn": "arn:aws:sqs:us-east-1:111122223333:audit",
                 "Events": ["s3:ObjectRemoved:*"]}],
            "TopicConfigurations": [{"Id": "csv", "TopicArn": "arn:aws:sns:us-east-1:111122223333:t",
                 "Events": ["s3:ObjectCreated:Put"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "in/"},
                                                    {"Name": "Suffix", "Value": ".csv"}]}}}],
            "ResponseMetadata": {"RequestId": "x"}});
        let merged = merged(existing, QUEUE, &filters).unwrap();
        assert_eq!(
            merged["QueueConfigurations"],
            json!([
                {"Id": "audit", "QueueArn": "arn:aws:sqs:us-east-1:111122223333:audit",
                 "Events": ["s3:ObjectRemoved:*"]},
                {"Id": "ferry-h5", "QueueArn": QUEUE, "Events": ["s3:ObjectCreated:*"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"},
                                                    {"Name": "suffix", "Value": ".h5"}]}}}
            ]),
            "an earlier Ferry configuration of the queue is replaced, others kept"
        );
        assert_eq!(merged["TopicConfigurations"][0]["Id"], "csv");
        assert!(merged.get("ResponseMetadata").is_none());
    }

    #[test]
    fn what_s3_would_refuse_is_refused_here() {
        let (_, filters) = chosen(routes().notification_filters(), Some("ferry-data")).unwrap();
        let clash = json!({"LambdaFunctionConfigurations": [{"Id": "thumbs",
            "LambdaFunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:t",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/raw/"}]}}}]});
        let e = merged(clash, QUEUE, &filters).unwrap_err();
        assert!(
            e.message
                .contains("thumbs (LambdaFunctionConfigurations) overlaps ferry-h5"),
            "{}",
            e.message
        );
        let e = chosen(routes().notification_filters(), None).unwrap_err();
        assert!(
            e.message.contains("ferry-data, ferry-other"),
            "{}",
            e.message
        );
        let allowed = buckets_that_cannot_send(&routes(), "ferry-data");
        assert_eq!(allowed.len(), 1);
        assert!(allowed[0].contains("ferry-other"), "{allowed:?}");
    }
}
