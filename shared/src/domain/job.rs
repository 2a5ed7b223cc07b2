//! The job spec: the contract between triggers, the state machine and the functions.
//!
//! A job says which transfer to run (an FSx for Lustre data repository task or a DataSync task
//! execution), with every option the APIs take, plus Ferry's own control fields (timeout, polling,
//! notification). It is versioned (`version: 1`) and rejects unknown fields, so a typo such as
//! `pahts` is an error instead of a silently ignored option. [`JobSpec::validate`] checks every
//! rule and returns a [`ValidJob`]: the spec together with its parsed, per-service parts
//! ([`Service`]), the only thing the AWS adapters accept. The field reference is
//! `docs/job-spec.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::domain::poll::PollSettings;
use crate::domain::task_definition::TaskDefinition;
use crate::error::FieldErrors;
use crate::ids::{DataSyncTaskArn, FileSystemId, RoleArn, S3BucketArn, S3Url, TopicArn};

/// The only job spec version this build understands.
pub const JOB_SPEC_VERSION: u32 = 1;

/// What kind of transfer a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// FSx `EXPORT_TO_REPOSITORY`: file system → linked S3 repository.
    FsxExport,
    /// FSx `IMPORT_METADATA_FROM_REPOSITORY`: linked S3 repository → file system metadata.
    FsxImport,
    /// FSx `RELEASE_DATA_FROM_FILESYSTEM`: free file data that is already exported.
    FsxRelease,
    /// FSx `AUTO_RELEASE_DATA` (the API documents it for Amazon File Cache).
    FsxAutoRelease,
    /// A DataSync `StartTaskExecution` of an existing task.
    Datasync,
}

impl JobKind {
    pub fn is_fsx(self) -> bool {
        !matches!(self, JobKind::Datasync)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::FsxExport => "fsx_export",
            JobKind::FsxImport => "fsx_import",
            JobKind::FsxRelease => "fsx_release",
            JobKind::FsxAutoRelease => "fsx_auto_release",
            JobKind::Datasync => "datasync",
        }
    }

    /// The FSx `Type` of a data repository task, for FSx kinds.
    pub fn fsx_task_type(self) -> Option<FsxTaskType> {
        match self {
            JobKind::FsxExport => Some(FsxTaskType::Export),
            JobKind::FsxImport => Some(FsxTaskType::Import),
            JobKind::FsxRelease => Some(FsxTaskType::Release),
            JobKind::FsxAutoRelease => Some(FsxTaskType::AutoRelease),
            JobKind::Datasync => None,
        }
    }
}

/// The FSx data repository task `Type` of an FSx job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsxTaskType {
    Export,
    Import,
    Release,
    AutoRelease,
}

impl FsxTaskType {
    /// The API's value (`CreateDataRepositoryTask` `Type`).
    pub fn as_str(self) -> &'static str {
        match self {
            FsxTaskType::Export => "EXPORT_TO_REPOSITORY",
            FsxTaskType::Import => "IMPORT_METADATA_FROM_REPOSITORY",
            FsxTaskType::Release => "RELEASE_DATA_FROM_FILESYSTEM",
            FsxTaskType::AutoRelease => "AUTO_RELEASE_DATA",
        }
    }
}

/// One transfer job (`docs/job-spec.md`). Optional fields are left out when serialized, so
/// a job round-trips to the JSON it came from.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Spec version; must be 1.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Job name, used in reports, tags and execution names: 1–64 of `[A-Za-z0-9._-]`.
    pub name: String,
    pub kind: JobKind,

    // --- FSx data repository tasks ---
    /// `FileSystemId`: `fs-` then at least 8 hex digits.
    pub file_system_id: Option<String>,
    /// `Paths`: relative file system paths (export, release) or `s3://bucket/prefix` (import).
    /// Empty means the API default (the whole file system or every linked repository).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// `Report`: the completion report.
    pub report: Option<ReportSpec>,
    /// `ReleaseConfiguration` (release only).
    pub release: Option<ReleaseSpec>,
    /// `CapacityToRelease` in GiB (auto-release only).
    pub capacity_to_release: Option<i64>,

    // --- DataSync task executions ---
    /// `TaskArn` of an existing DataSync task; or else `task`.
    pub task_arn: Option<String>,
    /// A DataSync task Ferry ensures itself (`CreateTask`, kept in line with `UpdateTask`):
    /// every `CreateTask` field ([`TaskDefinition`]); or else `task_arn`.
    pub task: Option<TaskDefinition>,
    /// `OverrideOptions` for this execution only.
    pub options: Option<DataSyncOptions>,
    /// `Includes`: patterns joined with `|` into one `SIMPLE_PATTERN` rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// `Excludes`: patterns joined with `|` into one `SIMPLE_PATTERN` rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// `ManifestConfig`: transfer exactly the files a CSV manifest in S3 lists.
    pub manifest: Option<ManifestSpec>,
    /// `TaskReportConfig`: where and how DataSync writes its task report.
    pub task_report: Option<TaskReportSpec>,

    // --- Both ---
    /// `Tags` on the task or execution (at most 50).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,

    // --- Ferry control ---
    /// Cancel the task when it runs longer than this (seconds, from its creation). Default 24 h.
    pub timeout_seconds: Option<u64>,
    /// Bounds of the adaptive polling interval.
    pub poll: Option<PollSpec>,
    /// Where the completion report goes, when not the deployment's default topic.
    pub notify: Option<NotifySpec>,
    /// The run this job reruns (`run-…`, what `ferry retry` sets): its report names that run.
    pub retry_of: Option<String>,
}

fn default_version() -> u32 {
    JOB_SPEC_VERSION
}

/// FSx `CompletionReport`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub enabled: bool,
    /// `s3://bucket/prefix` inside the file system's linked repository. Required when enabled.
    pub path: Option<String>,
    /// Only `REPORT_CSV_20191124` exists; it is the default.
    pub format: Option<String>,
    /// Only `FAILED_FILES_ONLY` exists; it is the default.
    pub scope: Option<String>,
}

/// FSx `ReleaseConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// `DurationSinceLastAccess` in `DAYS` (the only unit): release files not accessed for this
    /// many days. 0 releases every exported file.
    pub days_since_last_access: i64,
}

/// DataSync `Options`, as overrides for one execution. Values are the API's enum strings.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSyncOptions {
    pub verify_mode: Option<String>,
    pub overwrite_mode: Option<String>,
    pub atime: Option<String>,
    pub mtime: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub preserve_deleted_files: Option<String>,
    pub preserve_devices: Option<String>,
    pub posix_permissions: Option<String>,
    /// -1 for unlimited, or at least 1.
    pub bytes_per_second: Option<i64>,
    pub task_queueing: Option<String>,
    pub log_level: Option<String>,
    pub transfer_mode: Option<String>,
    pub security_descriptor_copy_flags: Option<String>,
    pub object_tags: Option<String>,
}

/// DataSync `ManifestConfig` (Action `TRANSFER`, Format `CSV`, source in S3).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// `S3BucketArn` of the bucket holding the manifest.
    pub bucket_arn: String,
    /// `ManifestObjectPath`: the manifest's key.
    pub object_path: String,
    /// `BucketAccessRoleArn`: the role DataSync assumes to read it (needs `iam:PassRole`).
    pub bucket_access_role_arn: String,
    /// `ManifestObjectVersionId`, to pin a version.
    pub object_version_id: Option<String>,
}

/// DataSync `TaskReportConfig` with an S3 destination.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReportSpec {
    /// `Destination.S3.S3BucketArn`.
    pub bucket_arn: String,
    /// `Destination.S3.Subdirectory`: the prefix reports go under.
    pub subdirectory: Option<String>,
    /// `Destination.S3.BucketAccessRoleArn`.
    pub bucket_access_role_arn: String,
    /// `OutputType`: `SUMMARY_ONLY` or `STANDARD`.
    pub output_type: Option<String>,
    /// `ReportLevel`: `ERRORS_ONLY` or `SUCCESSES_AND_ERRORS`.
    pub report_level: Option<String>,
    /// `ObjectVersionIds`: `INCLUDE` or `NONE`.
    pub object_version_ids: Option<String>,
    /// `Overrides`: a report level per category.
    pub overrides: Option<ReportOverridesSpec>,
}

/// DataSync `ReportOverrides`: a `ReportLevel` for each category of file.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportOverridesSpec {
    pub transferred: Option<String>,
    pub verified: Option<String>,
    pub deleted: Option<String>,
    pub skipped: Option<String>,
}

/// Bounds of the adaptive polling interval, in seconds.
#[skip_serializing_none]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    pub min_seconds: Option<u32>,
    pub max_seconds: Option<u32>,
}

/// Per-job notification settings.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// SNS topic ARN that receives this job's completion report.
    pub topic_arn: Option<String>,
}

/// Default task timeout: 24 hours.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;

impl JobSpec {
    /// The timeout in seconds, with the default applied.
    pub fn timeout_seconds(&self) -> u64 {
        self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }

    /// The job's polling bounds, each defaulting to `defaults`.
    pub fn poll_settings(&self, defaults: PollSettings) -> PollSettings {
        let spec = self.poll.unwrap_or(PollSpec {
            min_seconds: None,
            max_seconds: None,
        });
        PollSettings {
            min_seconds: spec.min_seconds.unwrap_or(defaults.min_seconds),
            max_seconds: spec.max_seconds.unwrap_or(defaults.max_seconds),
        }
    }

    /// Checks every rule (see [`crate::domain::validate`]) and returns every broken one at once.
    pub fn validate(self, limits: &Limits) -> Result<ValidJob, FieldErrors> {
        crate::domain::validate::validate(self, limits)
    }
}

/// Deployment-wide limits applied during validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most FSx `Paths` one task may carry. The API model allows 100; the FSx user guide's
    /// console steps say 32, so Ferry defaults to 32 (`FERRY_MAX_PATHS` raises it up to 100).
    pub max_paths: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_paths: crate::domain::validate::DEFAULT_MAX_PATHS,
        }
    }
}

/// A job that passed validation: the spec as given (what is serialized, hashed into
/// idempotency keys and reported) and the parts each service needs, parsed. Only this type
/// reaches the AWS adapters, which match on [`ValidJob::service`] instead of checking strings.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJob {
    spec: JobSpec,
    service: Service,
    topic: Option<TopicArn>,
}

/// The parsed, service-specific part of a valid job.
#[derive(Debug, Clone, PartialEq)]
pub enum Service {
    Fsx(FsxJob),
    DataSync(DataSyncJob),
}

/// What `CreateDataRepositoryTask` needs beyond the spec's plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct FsxJob {
    pub file_system_id: FileSystemId,
    pub task_type: FsxTaskType,
    /// The completion report's path, when the report is enabled.
    pub report_path: Option<S3Url>,
}

/// What `StartTaskExecution` needs beyond the spec's plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSyncJob {
    pub target: DataSyncTarget,
    pub manifest: Option<S3Source>,
    pub task_report: Option<S3Source>,
}

/// The task a DataSync job runs: one that exists, or one Ferry ensures from a definition
/// before each run.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSyncTarget {
    Task(DataSyncTaskArn),
    Definition(Box<TaskDefinition>),
}

/// An S3 bucket DataSync reads (a manifest) or writes (a task report), and the role it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Source {
    pub bucket_arn: S3BucketArn,
    pub bucket_access_role_arn: RoleArn,
}

impl ValidJob {
    /// Assembled by validation once every rule holds.
    pub(crate) fn new(spec: JobSpec, service: Service, topic: Option<TopicArn>) -> ValidJob {
        ValidJob {
            spec,
            service,
            topic,
        }
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    pub fn into_spec(self) -> JobSpec {
        self.spec
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The job's own report topic (`notify.topic_arn`), when it names one.
    pub fn topic(&self) -> Option<&TopicArn> {
        self.topic.as_ref()
    }
}

impl std::ops::Deref for ValidJob {
    type Target = JobSpec;

    fn deref(&self) -> &JobSpec {
        &self.spec
    }
}
