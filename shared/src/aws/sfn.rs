//! Step Functions: `StartExecution` (how the entries start runner executions), and
//! [`AwsTokens`]: `SendTaskSuccess` and `SendTaskHeartbeat` on the task tokens of runners that
//! wait for a DataSync run's end.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::operation::start_execution::StartExecutionError as StartError;
use aws_smithy_runtime_api::client::result::SdkError;

use super::{Class, classify};
use crate::error::FerryError;
use crate::ids::StateMachineArn;
use crate::ports::{KeepRunnersWaiting, StartOutcome, TokenAnswer, WakeRunners};

/// Completes and heartbeats waiting runners' tasks.
#[derive(Debug, Clone)]
pub struct AwsTokens {
    client: Client,
}

impl AwsTokens {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsTokens {
            client: Client::new(config),
        }
    }

    pub fn from_client(client: Client) -> Self {
        AwsTokens { client }
    }
}

/// A token whose task no longer waits: `TaskTimedOut` (it timed out, or was completed),
/// `TaskDoesNotExist`, `InvalidToken` (SendTaskSuccess and SendTaskHeartbeat, API reference).
/// A late or duplicate wake meets them; they are answers, not errors.
const STALE_TOKEN_ERRORS: [&str; 3] = ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"];

fn token_answer<E, R>(
    operation: &'static str,
    answer: Result<(), SdkError<E, R>>,
) -> Result<TokenAnswer, FerryError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match answer {
        Ok(()) => Ok(TokenAnswer::Taken),
        Err(e) if e.code().is_some_and(|c| STALE_TOKEN_ERRORS.contains(&c)) => {
            Ok(TokenAnswer::Stale)
        }
        Err(e) => Err(classify(operation, e, None)),
    }
}

/// Completes a waiting task with `output` (also [`super::AwsTrigger`]'s, for `submit`'s cancel).
pub(super) async fn send_task_success(
    client: &Client,
    token: &str,
    output: &str,
) -> Result<TokenAnswer, FerryError> {
    let answer = client
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
        .map(|_| ());
    token_answer("SendTaskSuccess", answer)
}

impl WakeRunners for AwsTokens {
    async fn wake_runner(&self, token: &str, output: &str) -> Result<TokenAnswer, FerryError> {
        send_task_success(&self.client, token, output).await
    }
}

impl KeepRunnersWaiting for AwsTokens {
    async fn keep_waiting(&self, token: &str) -> Result<TokenAnswer, FerryError> {
        let answer = self
            .client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ());
        token_answer("SendTaskHeartbeat", answer)
    }
}

/// Starts the execution `name` of `state_machine`. For a standard workflow, StartExecution with
/// the name and input of a running execution returns that execution; a name used in the last
/// 90 days otherwise fails with `ExecutionAlreadyExists` (API reference). Both mean it was
/// started before.
pub(super) async fn start_execution(
    client: &Client,
    state_machine: &StateMachineArn,
    name: &str,
    input: &str,
) -> Result<StartOutcome, FerryError> {
    const OP: &str = "StartExecution";
    let answer = client
        .start_execution()
        .state_machine_arn(state_machine.as_str())
        .name(name)
        .input(input)
        .send()
        .await;
    let error = match answer {
        Ok(output) => {
            return Ok(StartOutcome::Started {
                execution_arn: output.execution_arn().to_owned(),
            });
        }
        Err(error) => error,
    };
    let class = match error.as_service_error() {
        Some(StartError::ExecutionAlreadyExists(_)) => return Ok(StartOutcome::AlreadyStarted),
        Some(StartError::ExecutionLimitExceeded(_)) => Some(Class::LimitExceeded),
        Some(StartError::StateMachineDoesNotExist(_) | StartError::StateMachineDeleting(_)) => {
            Some(Class::NotFound)
        }
        Some(
            StartError::InvalidArn(_)
            | StartError::InvalidName(_)
            | StartError::InvalidExecutionInput(_)
            | StartError::ValidationException(_),
        ) => Some(Class::Rejected),
        _ => None,
    };
    Err(classify(OP, error, class))
}
