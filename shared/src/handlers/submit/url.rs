//! `submit`'s function URL (`AuthType: AWS_IAM`): people's requests, each with a caller AWS
//! verified. Lambda authenticates the SigV4 signature and authorizes `lambda:InvokeFunctionUrl`
//! before the function runs, and puts the caller's ARN in `requestContext.authorizer.iam.
//! userArn` (Lambda developer guide, "Invoking Lambda function URLs", request payload). Ferry's
//! access policy ([`crate::domain::access`]) then decides what that caller may do.
//!
//! `POST` with a JSON body: a job (`{"job": …, "id": …}`, as `ferry submit` sends it), a
//! cancel (`{"cancel": {"job": "job-…", "reason": "…"}}`: who cancels is the verified caller),
//! or `{"whoami": {}}` (the caller's ARN and what the policy grants it: `ferry whoami`).
//! The answer is always an HTTP response, never a function error (a URL answers those with a
//! bare 502): 200 with what `submit` answers, or 4xx/5xx with `{"error_type", "message"}`.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, trace, warn};

use super::{NoOptions, SubmitOutput, timing};
use crate::config::SubmitConfig;
use crate::domain::access::{Action, Policy, Principal, Request, Whoami};
use crate::domain::job::JobKind;
use crate::domain::parse;
use crate::error::FerryError;
use crate::lanes::intake::{self, Caller, CancelAnswer, CancelInput, SubmitInput};
use crate::lanes::record::Millis;
use crate::lanes::runner::Cancelled;
use crate::lanes::{JobId, LaneId};
use crate::ports::{
    LaneLease, LaneQueue, LaneRuns, LaneView, ReadLinks, StartExecution, WakeRunners, WakeSlots,
};

/// Whether `payload` is a function URL request (payload format 2.0: `rawPath` and
/// `requestContext.http`), not a direct invocation.
pub fn is_url_request(payload: &Value) -> bool {
    payload.get("rawPath").is_some()
        && payload
            .get("requestContext")
            .and_then(|context| context.get("http"))
            .is_some()
}

/// What a function URL returns to its caller (payload format 2.0's response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlResponse {
    pub status_code: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

impl UrlResponse {
    fn json(status_code: u16, body: &impl Serialize) -> UrlResponse {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".to_owned(), "application/json".to_owned());
        UrlResponse {
            status_code,
            headers,
            body: serde_json::to_string(body).unwrap_or_default(),
        }
    }

    fn error(status_code: u16, error_type: &str, message: &str) -> UrlResponse {
        Self::json(
            status_code,
            &json!({"error_type": error_type, "message": message}),
        )
    }

    /// An error as its HTTP status: the caller's fault (4xx, never worth retrying as is) or
    /// Ferry's and AWS's (5xx; 503 for what a retry may cure).
    fn of(error: &FerryError) -> UrlResponse {
        let status = match error {
            FerryError::InvalidJob(_)
            | FerryError::Rejected { .. }
            | FerryError::InvalidEvent { .. }
            | FerryError::TooLarge(_) => 400,
            FerryError::AccessDenied { .. } => 403,
            FerryError::NotFound { .. } => 404,
            FerryError::TaskConflict { .. } => 409,
            FerryError::Throttled { .. }
            | FerryError::LimitExceeded { .. }
            | FerryError::AwsService { .. }
            | FerryError::LeaseLost { .. } => 503,
            FerryError::Configuration(_) | FerryError::Indeterminate { .. } => 500,
        };
        Self::error(status, error.error_type(), &error.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoamiEnvelope {
    #[serde(rename = "whoami")]
    _options: NoOptions,
}

/// A cancel through the URL: no `by`, the verified caller is who cancels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlCancel {
    job: JobId,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlCancelEnvelope {
    cancel: UrlCancel,
}

/// The HTTP response for what [`answer`] made of a request: 200 with the output, or the error
/// with its status.
pub fn respond(answer: Result<SubmitOutput, FerryError>) -> SubmitOutput {
    let response = match answer {
        Ok(output) => UrlResponse::json(200, &output),
        Err(e) => {
            // The caller gets the whole message; the logs only its type below TRACE, as an
            // invalid job's message echoes the input (docs/guarantees.md, "Security").
            let response = UrlResponse::of(&e);
            warn!(
                error_type = e.error_type(),
                status = response.status_code,
                "function URL request refused"
            );
            trace!(error = %e, "function URL request refused");
            response
        }
    };
    SubmitOutput::Url(response)
}

/// Does what one function URL request asks (see the module's summary); [`respond`] makes the
/// HTTP response.
pub async fn answer<
    S: StartExecution + WakeRunners + ReadLinks,
    L: LaneView + LaneQueue + LaneLease + LaneRuns + WakeSlots,
>(
    ports: &(S, L),
    config: &SubmitConfig,
    payload: Value,
    request_id: &str,
) -> Result<SubmitOutput, FerryError> {
    let request: LambdaFunctionUrlRequest = parse::from_value(payload, "")?;
    let principal = verified_caller(&request)?;
    let body = body(&request)?;
    if body.get("whoami").is_some() {
        let _: WhoamiEnvelope = parse::from_value(body, "")?;
        return Ok(SubmitOutput::Whoami(Whoami {
            caller: principal.to_string(),
            policy: config.access.is_some(),
            grants: config
                .access
                .as_ref()
                .map(|policy| policy.grants(&principal))
                .unwrap_or_default(),
        }));
    }
    let policy = config.access.as_ref().ok_or_else(|| FerryError::AccessDenied {
        message: "this deployment has no access policy (the AccessPolicy parameter, FERRY_ACCESS_POLICY): every function URL request is refused".into(),
    })?;
    let caller = (policy, &principal);
    let timing = timing(&config.lanes);
    if body.get("cancel").is_some() {
        let input: UrlCancelEnvelope = parse::from_value(body, "")?;
        let done = cancel(ports, caller, input.cancel, timing.now).await?;
        return Ok(SubmitOutput::CancelledBy(CancelAnswer {
            done,
            by: principal.to_string(),
        }));
    }
    let input: SubmitInput = parse::from_value(body, "")?;
    if input.occurrence.is_some() {
        return Err(FerryError::invalid(
            "occurrence",
            "is for schedules' direct invocations; a person's job gives `id` instead",
        ));
    }
    let job = input.job.clone().validate(&config.tasks.limits)?;
    let lane = LaneId::of(&job).to_string();
    let rule = allow(caller, Action::Submit, job.spec().kind, &lane)?;
    info!(caller = %principal, rule, lane, "submit allowed");
    super::checked_submit(
        ports,
        (&input, job, Caller::Verified(&principal)),
        (request_id, timing),
    )
    .await
    .map(SubmitOutput::Submitted)
}

/// A verified caller's cancel: of its own job (`cancel`), or of anyone's (`cancel-others`).
async fn cancel<S: StartExecution + WakeRunners, L: LaneView + LaneRuns + WakeSlots>(
    ports: &(S, L),
    (policy, principal): (&Policy, &Principal),
    input: UrlCancel,
    now: Millis,
) -> Result<Cancelled, FerryError> {
    let record = ports
        .1
        .job(&input.job)
        .await?
        .ok_or_else(|| FerryError::NotFound {
            message: format!(
                "job {} is not in the lane table (never enqueued, or ended more than 30 days ago)",
                input.job
            ),
            source: None,
        })?;
    let own = intake::submitter(&record.job) == Some(principal.as_str());
    let action = if own {
        Action::Cancel
    } else {
        Action::CancelOthers
    };
    let lane = record.job.lane.to_string();
    let rule = allow((policy, principal), action, record.job.spec.kind, &lane).map_err(|e| {
        if own {
            return e;
        }
        FerryError::AccessDenied {
            message: format!(
                "{} (the job was not submitted by this caller: its source is \"{}\")",
                e.to_string().trim_start_matches("access denied: "),
                record.job.source
            ),
        }
    })?;
    info!(job = %input.job, caller = %principal, rule, "cancel allowed");
    let cancel = CancelInput {
        job: input.job,
        by: principal.to_string(),
        reason: input.reason,
    };
    intake::cancel(ports, (&cancel, Caller::Verified(principal)), now).await
}

/// The rule of `policy` that lets `principal` do `action` on a `kind` job in `lane`.
fn allow<'p>(
    (policy, principal): (&'p Policy, &Principal),
    action: Action,
    kind: JobKind,
    lane: &str,
) -> Result<&'p str, FerryError> {
    policy
        .check(Request {
            principal,
            action,
            kind,
            lane,
        })
        .map_err(|denied| FerryError::AccessDenied {
            message: denied.to_string(),
        })
}

/// The caller's principal ARN as Lambda verified it; none means the URL is not `AWS_IAM`.
fn verified_caller(request: &LambdaFunctionUrlRequest) -> Result<Principal, FerryError> {
    let arn = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.iam.as_ref())
        .and_then(|iam| iam.user_arn.as_deref())
        .ok_or_else(|| FerryError::AccessDenied {
            message: "no verified caller: the request carries no IAM identity (the function URL must use AuthType AWS_IAM)".into(),
        })?;
    Ok(Principal::parse(arn)?)
}

/// The request's JSON body, from a `POST`.
fn body(request: &LambdaFunctionUrlRequest) -> Result<Value, FerryError> {
    let method = request
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or_default();
    if method != "POST" {
        return Err(FerryError::invalid(
            "requestContext.http.method",
            format!("must be POST (a job or a cancel as JSON); got {method:?}"),
        ));
    }
    if request.is_base64_encoded {
        // Lambda encodes bodies it does not take for text: the content type was not JSON.
        return Err(FerryError::invalid(
            "body",
            "must be sent with Content-Type: application/json",
        ));
    }
    let text = request.body.as_deref().unwrap_or_default();
    parse::from_str(text, "body").map_err(FerryError::from)
}
