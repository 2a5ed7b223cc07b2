//! Step Functions `StartExecution`: how the entries start runner executions.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::operation::start_execution::StartExecutionError as StartError;

use super::{Class, classify};
use crate::error::FerryError;
use crate::ids::StateMachineArn;
use crate::ports::StartOutcome;

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
