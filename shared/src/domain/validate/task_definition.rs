//! The rules the DataSync API reference states for `CreateTask`, checked on a job's `task`
//! block before any AWS call; every broken rule is reported, each under `job.task.`.

use aws_sdk_datasync::types as ds;

use super::{Checker, field};
use crate::domain::task_definition::{DIGEST_TAG, NAME_TAG, TaskDefinition};
use crate::error::{FieldError, FieldErrors};
use crate::ids::Arn;

/// `TagValue` (the type of `Name` and of tag values): at most 256 characters.
const MAX_TAG_VALUE_CHARS: usize = 256;
/// `TagKey`: 1-256 characters.
const MAX_TAG_KEY_CHARS: usize = 256;
/// `InputTagList`: at most 50 tags, two of them Ferry's ([`NAME_TAG`], [`DIGEST_TAG`]).
const MAX_USER_TAGS: usize = 50 - 2;
/// `LocationArn`: at most 128 characters.
const MAX_LOCATION_ARN_CHARS: usize = 128;
/// `LogGroupArn`: at most 562 characters.
const MAX_LOG_GROUP_ARN_CHARS: usize = 562;
/// `ScheduleExpressionCron`: at most 256 characters.
const MAX_SCHEDULE_CHARS: usize = 256;

/// Checks every `CreateTask` rule for `def`; `Err` lists each broken one.
pub fn validate(def: &TaskDefinition) -> Result<(), FieldErrors> {
    let mut c = Checker::default();
    c.definition(def);
    if c.errors.is_empty() {
        return Ok(());
    }
    // The shared checks name fields `job.…`; a definition's live under `job.task.…`.
    let errors = c
        .errors
        .into_iter()
        .map(|e| FieldError {
            field: e
                .field
                .strip_prefix("job.")
                .map_or(e.field.clone(), |rest| format!("job.task.{rest}")),
            problem: e.problem,
        })
        .collect();
    Err(FieldErrors { errors })
}

/// `TagValue`'s pattern `^[a-zA-Z0-9\s+=._:@/-]+$` (`TagKey`'s has no `@`).
fn tag_char(ch: char, at: bool) -> bool {
    ch.is_ascii_alphanumeric()
        || ch.is_ascii_whitespace()
        || matches!(ch, '+' | '=' | '.' | '_' | ':' | '/' | '-')
        || (at && ch == '@')
}

/// `LocationArn`: `^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):datasync:[a-z\-0-9]+:[0-9]{12}:location/loc-[0-9a-z]{17}$`.
fn is_location_arn(text: &str) -> bool {
    text.len() <= MAX_LOCATION_ARN_CHARS
        && Arn::parse(text).is_ok_and(|arn| {
            arn.service() == "datasync"
                && !arn.region().is_empty()
                && arn.account_id().is_some()
                && arn
                    .resource()
                    .strip_prefix("location/loc-")
                    .is_some_and(|id| {
                        id.len() == 17
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
                    })
        })
}

/// `LogGroupArn`: `^arn:(…):logs:[a-z\-0-9]+:[0-9]{12}:log-group:([^:\*]*)(:\*)?$`.
fn is_log_group_arn(text: &str) -> bool {
    text.len() <= MAX_LOG_GROUP_ARN_CHARS
        && Arn::parse(text).is_ok_and(|arn| {
            let name = arn
                .resource()
                .strip_prefix("log-group:")
                .map(|rest| rest.strip_suffix(":*").unwrap_or(rest));
            arn.service() == "logs"
                && !arn.region().is_empty()
                && arn.account_id().is_some()
                && name.is_some_and(|n| !n.contains([':', '*']))
        })
}

impl Checker {
    fn definition(&mut self, def: &TaskDefinition) {
        self.task_name(&def.name);
        for (name, arn) in [
            ("source_location_arn", &def.source_location_arn),
            ("destination_location_arn", &def.destination_location_arn),
        ] {
            if !is_location_arn(arn) {
                self.fail(
                    field(name),
                    format!("must be a DataSync location ARN (arn:aws:datasync:region:account:location/loc- and 17 of 0-9 a-z, at most {MAX_LOCATION_ARN_CHARS} characters); got {:?}", crate::domain::text::truncate_chars(arn, 200)),
                );
            }
        }
        if def.source_location_arn == def.destination_location_arn {
            self.fail(
                field("destination_location_arn"),
                "must differ from source_location_arn",
            );
        }
        self.one_of(
            field("task_mode"),
            def.task_mode.as_deref(),
            ds::TaskMode::values(),
        );
        if let Some(options) = &def.options {
            self.options(options);
            self.enhanced_options(def);
        }
        self.filter("includes", &def.includes);
        self.filter("excludes", &def.excludes);
        if let Some(schedule) = &def.schedule {
            self.schedule(&schedule.schedule_expression, schedule.status.as_deref());
        }
        if let Some(m) = &def.manifest {
            self.manifest(m);
        }
        if let Some(r) = &def.task_report {
            self.task_report(r);
        }
        if let Some(arn) = &def.cloudwatch_log_group_arn
            && !is_log_group_arn(arn)
        {
            self.fail(
                field("cloudwatch_log_group_arn"),
                format!("must be a CloudWatch Logs log group ARN (arn:aws:logs:region:account:log-group:name, optionally ending :*; at most {MAX_LOG_GROUP_ARN_CHARS} characters)"),
            );
        }
        self.definition_tags(def);
    }

    /// `Name` (a `TagValue`); Ferry also finds the task by it, so it is required.
    fn task_name(&mut self, name: &str) {
        let count = name.chars().count();
        if count == 0 || count > MAX_TAG_VALUE_CHARS || !name.chars().all(|c| tag_char(c, true)) {
            self.fail(
                field("name"),
                format!("must be 1-{MAX_TAG_VALUE_CHARS} characters of letters, digits, spaces and + = . _ : @ / - (DataSync TagValue; Ferry finds the task by it)"),
            );
        }
    }

    /// "POINT_IN_TIME_CONSISTENT … isn't currently supported with Enhanced mode tasks"
    /// (DataSync `Options.VerifyMode`).
    fn enhanced_options(&mut self, def: &TaskDefinition) {
        let verify = def.options.as_ref().and_then(|o| o.verify_mode.as_deref());
        if def.mode() == "ENHANCED" && verify == Some("POINT_IN_TIME_CONSISTENT") {
            self.fail(
                field("options.verify_mode"),
                "must not be POINT_IN_TIME_CONSISTENT for task_mode ENHANCED (not supported with Enhanced mode tasks; use ONLY_FILES_TRANSFERRED, its default, or NONE)",
            );
        }
    }

    /// `TaskSchedule`: a `cron(…)` or `rate(…)` expression of at most 256 characters of the
    /// model's pattern `^[a-zA-Z0-9\ \_\*\?\,\|\^\-\/\#\s\(\)\+]*$`; `Status` ENABLED or DISABLED.
    fn schedule(&mut self, expression: &str, status: Option<&str>) {
        let allowed = |c: char| {
            c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || "_*?,|^-/#()+".contains(c)
        };
        let shaped = (expression.starts_with("cron(") || expression.starts_with("rate("))
            && expression.ends_with(')');
        if !shaped
            || expression.chars().count() > MAX_SCHEDULE_CHARS
            || !expression.chars().all(allowed)
        {
            self.fail(
                field("schedule.schedule_expression"),
                format!("must be a cron(...) or rate(...) expression of at most {MAX_SCHEDULE_CHARS} characters of letters, digits, spaces and _ * ? , | ^ - / # ( ) +; got {:?}", crate::domain::text::truncate_chars(expression, 200)),
            );
        }
        self.one_of(
            field("schedule.status"),
            status,
            ds::ScheduleStatus::values(),
        );
    }

    /// `Tags`: at most 48 besides Ferry's two; keys 1-256 characters, values at most 256, of
    /// the model's patterns; `aws:` keys are AWS's and `ferry:task-…` keys Ferry's.
    fn definition_tags(&mut self, def: &TaskDefinition) {
        if def.tags.len() > MAX_USER_TAGS {
            self.fail(
                field("tags"),
                format!(
                    "at most {MAX_USER_TAGS} tags (DataSync takes 50; Ferry sets {NAME_TAG} and {DIGEST_TAG}); got {}",
                    def.tags.len()
                ),
            );
        }
        for (key, value) in &def.tags {
            let f = field(&format!("tags.{key}"));
            let key_len = key.chars().count();
            if key_len == 0
                || key_len > MAX_TAG_KEY_CHARS
                || !key.chars().all(|c| tag_char(c, false))
            {
                self.fail(&f, format!("key must be 1-{MAX_TAG_KEY_CHARS} characters of letters, digits, spaces and + = . _ : / -"));
            } else if key.starts_with("aws:") || key == NAME_TAG || key == DIGEST_TAG {
                self.fail(&f, "key is reserved (aws: keys are AWS's; ferry:task-name and ferry:task-definition are Ferry's)");
            }
            if value.chars().count() > MAX_TAG_VALUE_CHARS
                || !value.chars().all(|c| tag_char(c, true))
            {
                self.fail(&f, format!("value must be at most {MAX_TAG_VALUE_CHARS} characters of letters, digits, spaces and + = . _ : @ / -"));
            }
        }
    }
}
