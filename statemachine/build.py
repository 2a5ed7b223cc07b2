#!/usr/bin/env python3
"""Builds the lane runner's definition, statemachine/ferry.asl.json, from the states below and
one table of retry and catch policies per kind of step (issue 29). Standard library only.

    python3 statemachine/build.py           # writes statemachine/ferry.asl.json
    python3 statemachine/build.py --check   # exit 1 if the committed file differs (make lint)
    python3 statemachine/build.py --self-test

The JSON file is what template.yaml deploys and what the tests run; edit this file, then build.
docs/state-machine.md draws the states. Before building, the builder checks that every `Next`,
`Default` and `Catch` names a state, that every state is reachable from `StartAt`, and that
every Lambda step's errors come from the policy table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "ferry.asl.json"
WIDTH = 100  # the committed file's lines: an object or array on one line when it fits

# What a Lambda step can fail with that is worth retrying. Ferry's own `Throttled` (after the
# SDK's retries), then Lambda's: a function instance that crashed or ran past its Timeout is
# named two ways. The Step Functions guide says Lambda.Unknown, while Lambda's Invoke API
# answers errorType Runtime.ExitError / Sandbox.Timedout and Step Functions names a function's
# errors by their errorType; both spellings are listed, with the guide's
# Lambda.ClientExecutionTimeoutException.
LAMBDA_ERRORS = [
    "Throttled",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "Lambda.ClientExecutionTimeoutException",
    "Runtime.ExitError",
    "Sandbox.Timedout",
]
# A Task's own timeout: the invocation outlived the state (for a callback wait it means the
# wait ended, and AwaitEnd leaves it to its Catch).
TIMEOUT = ["States.Timeout"]
# Ferry's error_type for any other AWS failure (5xx, network): may be transient.
AWS = ["AwsService"]


def retry(errors: list[str], interval: int, attempts: int, comment: str,
          max_delay: int | None = None) -> dict[str, Any]:
    """A Retry entry with full jitter and doubling backoff."""
    entry: dict[str, Any] = {"Comment": comment, "ErrorEquals": errors,
                             "IntervalSeconds": interval, "BackoffRate": 2}
    if max_delay is not None:
        entry["MaxDelaySeconds"] = max_delay
    entry.update({"MaxAttempts": attempts, "JitterStrategy": "FULL"})
    return entry


# The policy table: how each kind of step retries. Every lane step is safe to repeat: each is
# one conditional write, and a repeat finds its work done.
TRANSIENT_AWS = "Any other AWS error (5xx, network) may be transient."
LANE = [
    retry(LAMBDA_ERRORS + TIMEOUT, 2, 8,
          "Throttling (after the SDK's retries) and Lambda errors, crashes and timeouts. Safe: "
          "each lane step is one conditional write, and a repeat finds its work done."),
    retry(AWS, 5, 6, TRANSIENT_AWS),
]
START = [
    retry(["LimitExceeded"], 120, 12,
          "FSx ServiceLimitExceeded: too many tasks queued on the account; drain slowly.",
          max_delay=900),
    retry(LAMBDA_ERRORS + TIMEOUT, 2, 6,
          "Throttling and Lambda errors, crashes and timeouts. Safe: start-task is idempotent."),
    retry(AWS, 10, 3, TRANSIENT_AWS),
]
STATUS = [
    retry(LAMBDA_ERRORS + TIMEOUT, 2, 8,
          "Throttling and Lambda errors, crashes and timeouts. Safe: task-status only reads "
          "(and renews the lease)."),
    retry(AWS, 15, 6, TRANSIENT_AWS),
]
AWAIT = [
    retry(LAMBDA_ERRORS, 2, 8,
          "Throttling and Lambda errors; not States.Timeout: here it means the wait ended. "
          "Parking again is safe: a new token replaces the old."),
]
CANCEL = [
    retry(LAMBDA_ERRORS + TIMEOUT + AWS, 2, 8,
          "Transient and Lambda errors, crashes and timeouts. Safe: cancelling twice answers "
          "already_ended or the task's state."),
]
CANCEL_ABANDONED = [
    retry(LAMBDA_ERRORS + TIMEOUT + AWS, 2, 4, "Transient and Lambda errors: a few times."),
]
REPORT = [
    retry(LAMBDA_ERRORS + TIMEOUT + AWS, 5, 10,
          "A report must not be lost to a transient failure: SNS throttling, 5xx, Lambda "
          "errors, crashes and timeouts. At least once: notify publishes the JSON report, then "
          "the text; a retry after the text failed publishes the same JSON report again "
          "(identical, same run: subscribers deduplicate on it; SNS standard topics deliver at "
          "least once anyway).",
          max_delay=300),
]
START_NEXT = [
    retry(["StepFunctions.ExecutionLimitExceededException", "StepFunctions.SdkClientException",
           "States.TaskFailed"], 2, 6, "Throttling and service errors."),
]

LEASE_LOST = {
    "Comment": "Another runner holds the lane: this execution was replaced after its lease "
               "expired (stopped by hand, or stalled). It stops without acting.",
    "ErrorEquals": ["LeaseLost"],
    "Next": "LaneLost",
}


def catch(next_state: str, result_path: str | None, comment: str | None = None) -> dict[str, Any]:
    """Where a step goes once its retries are spent (or on an error never retried)."""
    entry: dict[str, Any] = {"Comment": comment} if comment else {}
    entry.update({"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state})
    return entry


def answer(*fields: str) -> dict[str, str]:
    """A ResultSelector keeping these fields of a Lambda step's answer."""
    return {f"{field}.$": f"$.Payload.{field}" for field in fields}


ABSENT = object()  # a field left out (ResultPath's default: the result replaces the state)


def task(*, comment: str | None = None, resource: str, parameters: dict[str, Any],
         select: Any = ABSENT, result_path: Any = ABSENT, next: str, retry: list[dict],
         on_error: dict[str, Any] | None = None, leased: bool = True,
         **fields: Any) -> dict[str, Any]:
    """A Task state. A leased step is lane-checked: LeaseLost ends the runner quietly."""
    state: dict[str, Any] = {"Type": "Task"}
    if comment:
        state["Comment"] = comment
    state.update({"Resource": resource, "Parameters": parameters})
    state.update(fields)
    if select is not ABSENT:
        state["ResultSelector"] = select
    if result_path is not ABSENT:
        state["ResultPath"] = result_path
    state["Retry"] = retry
    catches = ([LEASE_LOST] if leased else []) + ([on_error] if on_error else [])
    if catches:
        state["Catch"] = catches
    state["Next"] = next
    return state


def invoke(function: str, payload: dict[str, Any], *, wait_for_token: bool = False,
           heartbeat_path: str | None = None, timeout_path: str | None = None,
           **rest: Any) -> dict[str, Any]:
    """A Lambda step: `function` names the template's `${<function>FunctionArn}`."""
    extra = {}
    if heartbeat_path:
        extra["HeartbeatSecondsPath"] = heartbeat_path
    if timeout_path:
        extra["TimeoutSecondsPath"] = timeout_path
    resource = "arn:aws:states:::lambda:invoke"
    return task(resource=resource + (".waitForTaskToken" if wait_for_token else ""),
                parameters={"FunctionName": f"${{{function}FunctionArn}}", "Payload": payload},
                **extra, **rest)


DEFINITION: dict[str, Any] = {
    "Comment": (
        "Ferry's lane runner: one execution at a time per lane (an FSx file system or a "
        "DataSync task), holding the lane's lease. It takes everything pending in the lane "
        "merged into one run, starts its task idempotently (the token derives from the run "
        "id), polls it adaptively (at most FERRY_BUSY_POLL_MAX_SECONDS apart while jobs "
        "wait), cancels it at its deadline or on request, publishes one report per run "
        "listing its jobs, finishes the run, and loops while anything is pending; then it "
        "releases the lane and looks again. Every step renews the lease: a runner that lost "
        "it stops quietly (LaneLost). A runner that stops otherwise lets its lease expire; "
        "the sweep starts one that adopts the run in flight. Input: {\"lane\", \"owner\", "
        "\"generation\"}, from the entries (s3-trigger, submit) or from the execution it "
        "continues (HandOver)."
    ),
    "StartAt": "Entry",
    "States": {
        "Entry": {
            "Type": "Choice",
            "Comment": (
                "An execution started by a cancel (submit's {\"cancel\": ...}) only reports the "
                "job it ended while pending: it takes no lease, so a busy lane does not hold the "
                "report back. A runner that replaces a stopped one (submit, on Step Functions' "
                "status change event) first lets the stopped runner's steps in flight end."
            ),
            "Choices": [
                {"Variable": "$.canceled", "IsPresent": True, "Next": "NotifyCanceled"},
                {"Variable": "$.settle_seconds", "IsPresent": True, "Next": "Settle"},
            ],
            "Default": "Init",
        },
        "Settle": {
            "Type": "Wait",
            "Comment": (
                "Step Functions does not stop a Lambda invocation in flight when it stops an "
                "execution: the stopped runner's last step may still be acting (start-task, "
                "task-status and cancel-task time out after 30 s). The replacement holds the "
                "lease already; it acts after settle_seconds (40: the 30 s and a margin)."
            ),
            "SecondsPath": "$.settle_seconds",
            "Next": "Init",
        },
        "NotifyCanceled": invoke(
            "Notify",
            {"expired.$": "$.canceled"},
            comment=(
                "One canceled report for the job: who cancelled it and why; it never ran. Failing"
                " here fails the execution (the failed-executions alarm)."
            ),
            select=answer("message_ids"),
            next="CanceledReported",
            retry=REPORT,
            leased=False,
        ),
        "CanceledReported": {"Type": "Succeed"},
        "Init": {
            "Type": "Pass",
            "Comment": (
                "The runner's input, from the entry that started it (s3-trigger, submit, the "
                "sweep) or from the execution it continues: its lane, its name (the lease's "
                "owner) and how many executions ran the lane before it without a break."
            ),
            "Parameters": {
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "generation.$": "$.generation",
                "history": {"events": 0},
            },
            "Next": "Take",
        },
        "Take": invoke(
            "Lane",
            {
                "action": "take",
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "generation.$": "$.generation",
            },
            comment=(
                "Renew the lease, then adopt the run in flight (a runner that stopped left it) or"
                " end the pending jobs past their deadline and claim a new run: the oldest "
                "pending job and every compatible one merged (docs/lanes.md)."
            ),
            select=answer("run", "adopted", "abandon", "expired", "backlog"),
            result_path="$.taken",
            next="CountTake",
            retry=LANE,
            on_error=catch(
                "RunnerFailed",
                "$.error",
                (
                    "The lane table cannot be read: stop. The lease expires and the sweep starts "
                    "a runner that adopts whatever is in flight."
                ),
            ),
        ),
        "CountTake": {
            "Type": "Pass",
            "Comment": (
                "The history-event budget: each state adds its events (Task 5 per attempt, "
                "Pass/Choice/Wait 2). A take with its choices is 11, 16 with expired jobs to "
                "report; counted 17."
            ),
            "Parameters": {"events.$": "States.MathAdd($.history.events, 17)"},
            "ResultPath": "$.history",
            "Next": "AnyExpired",
        },
        "AnyExpired": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.taken.expired[0]", "IsPresent": True, "Next": "NotifyExpired"},
            ],
            "Default": "AnyRun",
        },
        "NotifyExpired": invoke(
            "Notify",
            {"expired": {"lane.$": "$.lane", "jobs.$": "$.taken.expired"}},
            comment=(
                "One timed_out report for each job whose deadline passed while it waited in the "
                "lane: it never ran."
            ),
            select=answer("message_ids"),
            result_path=None,
            next="AnyRun",
            retry=REPORT,
            on_error=catch(
                "AnyRun",
                "$.notify_error",
                (
                    "The jobs are ended in the table whatever happens here; notify's error alarm "
                    "says a report was not published."
                ),
            ),
            leased=False,
        ),
        "AnyRun": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.taken.run", "IsNull": True, "Next": "Release"}],
            "Default": "Prepare",
        },
        "Prepare": {
            "Type": "Pass",
            "Comment": (
                "A fresh state for each run: what the last run left behind does not travel on."
            ),
            "Parameters": {
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "generation.$": "$.generation",
                "history.$": "$.history",
                "run.$": "$.taken.run",
                "abandon.$": "$.taken.abandon",
                "runner": {"lane.$": "$.lane", "owner.$": "$.owner", "run.$": "$.taken.run.id"},
                "flags": {"cancel_requested": False, "timed_out": False},
            },
            "Next": "Adopted",
        },
        "Adopted": {
            "Type": "Choice",
            "Comment": (
                "A run adopted after its task started is followed, not started again; one adopted"
                " more times than the lane function allows (every runner that followed it "
                "stopped) is abandoned."
            ),
            "Choices": [
                {"Variable": "$.abandon", "BooleanEquals": True, "Next": "Abandon"},
                {"Variable": "$.run.state", "StringEquals": "started", "Next": "Follow"},
            ],
            "Default": "StartTask",
        },
        "Follow": {
            "Type": "Pass",
            "Parameters": {
                "task.$": "$.run.task",
                "next_poll_seconds": 0,
                "busy": False,
                "timed_out": False,
            },
            "ResultPath": "$.started",
            "Next": "GetStatus",
        },
        "StartTask": invoke(
            "StartTask",
            {"runner.$": "$.runner"},
            comment=(
                "By reference: start-task reads the run's merged spec, deadline and cancel mark "
                "from the lane table (the state never carries a spec, which may weigh 320 KiB). "
                "The run's id makes the idempotency key: a retry of this state, or a runner that "
                "adopts the run, sends the same FSx ClientRequestToken / DataSync tag, so no "
                "second task is created. A target busy with a task Ferry did not start answers "
                "busy, not an error; a run cancelled before its task started answers canceled and"
                " is not started."
            ),
            select=answer("task", "busy", "canceled", "timed_out", "next_poll_seconds"),
            result_path="$.started",
            next="IsBusy",
            retry=START,
            on_error=catch(
                "NotifyCouldNotStart",
                "$.error",
                "InvalidJob, NotFound, or retries exhausted: the task never started.",
            ),
        ),
        "IsBusy": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.started.canceled",
                    "BooleanEquals": True,
                    "Next": "CanceledBeforeStart",
                },
                {"Variable": "$.started.timed_out", "BooleanEquals": True, "Next": "NeverStarted"},
                {
                    "And": [
                        {"Variable": "$.started.busy", "BooleanEquals": True},
                        {"Variable": "$.history.events", "NumericGreaterThanEquals": 15000},
                    ],
                    "Next": "HandOver",
                },
                {"Variable": "$.started.busy", "BooleanEquals": True, "Next": "WaitBusy"},
            ],
            "Default": "Started",
        },
        "WaitBusy": {
            "Type": "Wait",
            "Comment": (
                "Another task holds the file system: ask again when start-task says (a fifth of "
                "that task's age, at most FERRY_BUSY_POLL_MAX_SECONDS), so the run starts within "
                "one wait of it ending."
            ),
            "SecondsPath": "$.started.next_poll_seconds",
            "Next": "CountBusy",
        },
        "CountBusy": {
            "Type": "Pass",
            "Comment": "A busy round: Wait, this Pass, StartTask, IsBusy.",
            "Parameters": {"events.$": "States.MathAdd($.history.events, 11)"},
            "ResultPath": "$.history",
            "Next": "StartTask",
        },
        "Started": invoke(
            "Lane",
            {
                "action": "started",
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "run.$": "$.run.id",
                "task.$": "$.started.task",
            },
            comment=(
                "Record the task in the run, so a runner that adopts the run follows it. Best "
                "effort: without the record an adopting runner starts the run again with the same"
                " token and gets this task back."
            ),
            result_path=None,
            next="WaitFirst",
            retry=LANE,
            on_error=catch(
                "WaitFirst",
                "$.record_error",
            ),
        ),
        "WaitFirst": {
            "Type": "Wait",
            "SecondsPath": "$.started.next_poll_seconds",
            "Next": "GetStatus",
        },
        "GetStatus": invoke(
            "TaskStatus",
            {
                "task.$": "$.started.task",
                "cancel_requested.$": "$.flags.cancel_requested",
                "runner.$": "$.runner",
            },
            comment=(
                "Also renews the lease and reads the lane: with jobs waiting, the next check "
                "comes within FERRY_BUSY_POLL_MAX_SECONDS; a cancel asked for one of the run's "
                "jobs comes back as cancel_asked."
            ),
            select={
                "phase.$": "$.Payload.phase",
                "lifecycle.$": "$.Payload.lifecycle",
                "done.$": "$.Payload.done",
                "timed_out.$": "$.Payload.timed_out",
                "next_poll_seconds.$": "$.Payload.next_poll_seconds",
                "full.$": "$.Payload",
                "cancel_asked.$": "$.Payload.cancel_asked",
                "await.$": "$.Payload.await",
            },
            result_path="$.status",
            next="CountPoll",
            retry=STATUS,
            on_error=catch(
                "NotifyLostTrack",
                "$.error",
                (
                    "The task exists but can no longer be described (NotFound, or retries "
                    "exhausted): report it."
                ),
            ),
        ),
        "CountPoll": {
            "Type": "Pass",
            "Comment": "A poll: WaitPoll, GetStatus, this Pass, IsDone.",
            "Parameters": {"events.$": "States.MathAdd($.history.events, 11)"},
            "ResultPath": "$.history",
            "Next": "IsDone",
        },
        "IsDone": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.status.done", "BooleanEquals": True, "Next": "Notify"},
                {
                    "And": [
                        {"Variable": "$.status.timed_out", "BooleanEquals": True},
                        {"Variable": "$.flags.cancel_requested", "BooleanEquals": False},
                    ],
                    "Next": "MarkTimedOut",
                },
                {
                    "And": [
                        {"Variable": "$.status.cancel_asked", "BooleanEquals": True},
                        {"Variable": "$.flags.cancel_requested", "BooleanEquals": False},
                    ],
                    "Next": "MarkCanceled",
                },
                {
                    "Comment": (
                        "Not while cancelling: the next execution would not know why the task was"
                        " cancelled."
                    ),
                    "And": [
                        {"Variable": "$.history.events", "NumericGreaterThanEquals": 15000},
                        {"Variable": "$.flags.cancel_requested", "BooleanEquals": False},
                    ],
                    "Next": "HandOver",
                },
                {
                    "Comment": (
                        "A DataSync run that goes on: wait for its end event rather than poll "
                        "(task-status sets await unless events are off or a cancel is under way)."
                    ),
                    "Not": {"Variable": "$.status.await", "IsNull": True},
                    "Next": "AwaitEnd",
                },
            ],
            "Default": "WaitPoll",
        },
        "AwaitEnd": invoke(
            "Lane",
            {
                "action": "await",
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "run.$": "$.run.id",
                "task.$": "$.started.task",
                "token.$": "$$.Task.Token",
                "heartbeat_seconds.$": "$.status.await.heartbeat_seconds",
                "timeout_seconds.$": "$.status.await.timeout_seconds",
            },
            wait_for_token=True,
            comment=(
                "Callback: the lane function leaves this task's token in the run's wake slot; the"
                " run's end event, the scheduled check (an execution that ended without its "
                "event) or a cancel completes it (SendTaskSuccess), and the runner checks the "
                "execution (it decides from DescribeTaskExecution, not from the event: the wake's"
                " output is dropped). With no news for heartbeat_seconds "
                "(FERRY_DATASYNC_FALLBACK_POLL_SECONDS; the check's SendTaskHeartbeat is news) or"
                " at the task's timeout (the job's timeout_seconds from the task's creation, when"
                " the status check finds it timed_out), the wait times out and the runner checks "
                "anyway."
            ),
            heartbeat_path="$.status.await.heartbeat_seconds",
            timeout_path="$.status.await.timeout_seconds",
            result_path=None,
            next="CountAwait",
            retry=AWAIT,
            on_error=catch(
                "CountAwait",
                None,
                (
                    "No news for a heartbeat period, the deadline, or a wait that could not be "
                    "set up: check the execution now (polling is the safety net)."
                ),
            ),
        ),
        "CountAwait": {
            "Type": "Pass",
            "Comment": (
                "A wait: AwaitEnd (6 history events: entered, scheduled, started, submitted, "
                "succeeded or timed out, exited) and this Pass (2), less the WaitPoll (2) "
                "CountPoll counts."
            ),
            "Parameters": {"events.$": "States.MathAdd($.history.events, 6)"},
            "ResultPath": "$.history",
            "Next": "GetStatus",
        },
        "WaitPoll": {
            "Type": "Wait",
            "Comment": (
                "Adaptive: task-status returns 20% of the task's age within the job's poll "
                "bounds, shorter near the estimated end or the deadline, the minimum while "
                "cancelling; within FERRY_BUSY_POLL_MAX_SECONDS while jobs wait, and within a "
                "third of the lease always."
            ),
            "SecondsPath": "$.status.next_poll_seconds",
            "Next": "GetStatus",
        },
        "MarkTimedOut": {
            "Type": "Pass",
            "Comment": (
                "The run's timeout_seconds passed: remember why the task is being cancelled, so "
                "the report says timed_out rather than canceled."
            ),
            "Result": {"cancel_requested": True, "timed_out": True},
            "ResultPath": "$.flags",
            "Next": "CancelTask",
        },
        "MarkCanceled": {
            "Type": "Pass",
            "Comment": "Someone cancelled one of the run's jobs (lane function, action cancel).",
            "Result": {"cancel_requested": True, "timed_out": False},
            "ResultPath": "$.flags",
            "Next": "CancelTask",
        },
        "CancelTask": invoke(
            "CancelTask",
            {"task.$": "$.started.task", "cancel_requested": True, "runner.$": "$.runner"},
            comment=(
                "Idempotent: a task that already ended reports its final state (cancel = "
                "already_ended)."
            ),
            select={
                "phase.$": "$.Payload.phase",
                "lifecycle.$": "$.Payload.lifecycle",
                "done.$": "$.Payload.done",
                "timed_out.$": "$.Payload.timed_out",
                "next_poll_seconds.$": "$.Payload.next_poll_seconds",
                "full.$": "$.Payload",
                "cancel_asked": False,
                "await": None,
            },
            result_path="$.status",
            next="IsDone",
            retry=CANCEL,
            on_error=catch(
                "WaitPoll",
                "$.cancel_error",
                (
                    "Cancelling failed: keep polling; the task still ends on its own, and the "
                    "report still goes out."
                ),
            ),
        ),
        "Notify": invoke(
            "Notify",
            {
                "execution.$": "$$.Execution.Name",
                "task.$": "$.started.task",
                "status.$": "$.status.full",
                "timed_out.$": "$.flags.timed_out",
                "runner.$": "$.runner",
            },
            comment=(
                "One report for the run, listing the jobs it covered (notify reads them from the "
                "lane table)."
            ),
            select=answer("outcome"),
            result_path="$.notified",
            next="Finish",
            retry=REPORT,
            on_error=catch(
                "OutcomeUnreported",
                "$.notify_error",
                (
                    "Retries exhausted: notify's error alarm says so; the run still finishes, so "
                    "the lane does not stall behind a report."
                ),
            ),
        ),
        "OutcomeUnreported": {
            "Type": "Choice",
            "Comment": (
                "The outcome notify would have given: timed_out for a task cancelled at its "
                "deadline, the task's final phase (succeeded, failed or canceled) otherwise."
            ),
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.flags.timed_out", "BooleanEquals": True},
                        {"Variable": "$.status.phase", "StringEquals": "canceled"},
                    ],
                    "Next": "TimedOutUnreported",
                },
            ],
            "Default": "PhaseUnreported",
        },
        "TimedOutUnreported": {
            "Type": "Pass",
            "Result": {"outcome": "timed_out"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "PhaseUnreported": {
            "Type": "Pass",
            "Parameters": {"outcome.$": "$.status.phase"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "NotifyCouldNotStart": invoke(
            "Notify",
            {"execution.$": "$$.Execution.Name", "error.$": "$.error", "runner.$": "$.runner"},
            select=answer("outcome"),
            result_path="$.notified",
            next="Finish",
            retry=REPORT,
            on_error=catch(
                "CouldNotStartUnreported",
                "$.notify_error",
                (
                    "Retries exhausted: notify's error alarm says so; the run still finishes, so "
                    "the lane does not stall behind a report."
                ),
            ),
        ),
        "CouldNotStartUnreported": {
            "Type": "Pass",
            "Result": {"outcome": "could_not_start"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "CanceledBeforeStart": {
            "Type": "Pass",
            "Comment": (
                "Someone cancelled a job of the run before its task started: it is not started, "
                "and the report (notify names who asked and why) says canceled."
            ),
            "Parameters": {
                "Error": "Canceled",
                "Cause": "cancelled before its task started; it never ran",
            },
            "ResultPath": "$.error",
            "Next": "NotifyCouldNotStart",
        },
        "Abandon": {
            "Type": "Choice",
            "Comment": (
                "A run whose runners keep stopping (adopted more times than MAX_ADOPTIONS, "
                "shared/src/lanes/runner.rs) must not hold its lane for ever: its task, if it "
                "started, is cancelled; it is reported failed, and its jobs end failed."
            ),
            "Choices": [
                {"Not": {"Variable": "$.run.task", "IsNull": True}, "Next": "CancelAbandoned"},
            ],
            "Default": "NotifyAbandoned",
        },
        "CancelAbandoned": invoke(
            "CancelTask",
            {"task.$": "$.run.task", "cancel_requested": True, "runner.$": "$.runner"},
            comment=(
                "Best effort: a task Ferry stops following is cancelled (idempotent); whatever "
                "this answers, the run is reported and finished."
            ),
            result_path=None,
            next="NotifyAbandoned",
            retry=CANCEL_ABANDONED,
            on_error=catch(
                "NotifyAbandoned",
                "$.cancel_error",
                (
                    "The cancel failed: the run is abandoned all the same (the report says the "
                    "task may still run)."
                ),
            ),
        ),
        "NotifyAbandoned": invoke(
            "Notify",
            {
                "execution.$": "$$.Execution.Name",
                "task.$": "$.run.task",
                "error": {
                    "Error": "RunAbandoned",
                    "Cause.$": (
                        "States.Format('Ferry abandoned the run: {} runners in a row stopped "
                        "while following it (the limit is 3); its task, if one started, was "
                        "cancelled, and its jobs end failed. Submit them again once the cause is "
                        "fixed (the runner executions that failed say what stopped them).', "
                        "$.run.adoptions)"
                    ),
                },
                "runner.$": "$.runner",
            },
            comment="One report for the abandoned run: failed, and why.",
            select=answer("outcome"),
            result_path="$.notified",
            next="Finish",
            retry=REPORT,
            on_error=catch(
                "AbandonedUnreported",
                "$.notify_error",
                (
                    "Retries exhausted: notify's error alarm says so; the run still finishes, so "
                    "the lane moves on."
                ),
            ),
        ),
        "AbandonedUnreported": {
            "Type": "Pass",
            "Result": {"outcome": "failed"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "NeverStarted": {
            "Type": "Pass",
            "Comment": (
                "Every job's deadline passed while a task Ferry did not start held the file "
                "system."
            ),
            "Parameters": {
                "Error": "TimedOut",
                "Cause": (
                    "the file system stayed busy with a task Ferry did not start until the "
                    "deadline of every job of the run passed; the run never started"
                ),
            },
            "ResultPath": "$.error",
            "Next": "NotifyNeverStarted",
        },
        "NotifyNeverStarted": invoke(
            "Notify",
            {
                "execution.$": "$$.Execution.Name",
                "error.$": "$.error",
                "timed_out": True,
                "runner.$": "$.runner",
            },
            select=answer("outcome"),
            result_path="$.notified",
            next="Finish",
            retry=REPORT,
            on_error=catch(
                "NeverStartedUnreported",
                "$.notify_error",
                (
                    "Retries exhausted: notify's error alarm says so; the run still finishes, so "
                    "the lane does not stall behind a report."
                ),
            ),
        ),
        "NeverStartedUnreported": {
            "Type": "Pass",
            "Result": {"outcome": "timed_out"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "NotifyLostTrack": invoke(
            "Notify",
            {
                "execution.$": "$$.Execution.Name",
                "task.$": "$.started.task",
                "error.$": "$.error",
                "runner.$": "$.runner",
            },
            select=answer("outcome"),
            result_path="$.notified",
            next="Finish",
            retry=REPORT,
            on_error=catch(
                "LostTrackUnreported",
                "$.notify_error",
                (
                    "Retries exhausted: notify's error alarm says so; the run still finishes, so "
                    "the lane does not stall behind a report."
                ),
            ),
        ),
        "LostTrackUnreported": {
            "Type": "Pass",
            "Result": {"outcome": "failed"},
            "ResultPath": "$.notified",
            "Next": "Finish",
        },
        "Finish": invoke(
            "Lane",
            {
                "action": "finish",
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "run.$": "$.run.id",
                "outcome.$": "$.notified.outcome",
            },
            comment=(
                "Each job of the run ends as the report said; the lane is free for the next run."
            ),
            result_path=None,
            next="CountRun",
            retry=LANE,
            on_error=catch(
                "RunnerFailed",
                "$.error",
                (
                    "The run stays in flight: the lease expires and the runner the sweep starts "
                    "adopts it, finds its task ended and finishes it."
                ),
            ),
        ),
        "CountRun": {
            "Type": "Pass",
            "Comment": (
                "A run's own states beyond its polls, Prepare to Continue: 32 events, 41 with a "
                "cancel; counted 45."
            ),
            "Parameters": {"events.$": "States.MathAdd($.history.events, 45)"},
            "ResultPath": "$.history",
            "Next": "Continue",
        },
        "Continue": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.history.events",
                    "NumericGreaterThanEquals": 15000,
                    "Next": "HandOver",
                },
            ],
            "Default": "Take",
        },
        "Release": invoke(
            "Lane",
            {"action": "release", "lane.$": "$.lane", "owner.$": "$.owner"},
            comment=(
                "Nothing pending: give the lane up, then look again, so a job enqueued meanwhile "
                "(its entry found the lane still held) is taken here."
            ),
            select=answer("again"),
            result_path="$.release",
            next="Again",
            retry=LANE,
            on_error=catch(
                "RunnerFailed",
                "$.error",
            ),
        ),
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.release.again", "BooleanEquals": True, "Next": "Take"}],
            "Default": "Idle",
        },
        "Idle": {
            "Type": "Succeed",
            "Comment": (
                "Nothing pending and the lane released: the next entry starts a new runner."
            ),
        },
        "HandOver": invoke(
            "Lane",
            {
                "action": "hand_over",
                "lane.$": "$.lane",
                "owner.$": "$.owner",
                "generation.$": "$.generation",
            },
            comment=(
                "Step Functions keeps at most 25,000 events in an execution's history. Past "
                "15,000 counted events (the rest is room for retries), the lease passes to the "
                "runner's next execution, which this one starts; it adopts the run in flight."
            ),
            select=answer("lane", "owner", "generation"),
            result_path="$.next",
            next="StartNext",
            retry=LANE,
            on_error=catch(
                "RunnerFailed",
                "$.error",
            ),
        ),
        "StartNext": task(
            comment=(
                "The next execution, named by the lane function (a retry names the same one: "
                "StartExecution answers a running execution's name and input with it)."
            ),
            resource="arn:aws:states:::states:startExecution",
            parameters={
                "StateMachineArn.$": "$$.StateMachine.Id",
                "Name.$": "$.next.owner",
                "Input": {
                    "lane.$": "$.next.lane",
                    "owner.$": "$.next.owner",
                    "generation.$": "$.next.generation",
                    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                },
            },
            result_path=None,
            next="HandedOver",
            retry=START_NEXT,
            on_error=catch(
                "RunnerFailed",
                "$.error",
                (
                    "The lease is the next execution's already; if it never starts, the lease "
                    "expires and the sweep starts a runner."
                ),
            ),
            leased=False,
        ),
        "HandedOver": {"Type": "Succeed", "Comment": "The next execution carries on."},
        "LaneLost": {
            "Type": "Succeed",
            "Comment": "Another runner holds the lane: nothing to do.",
        },
        "RunnerFailed": {
            "Type": "Fail",
            "Error": "RunnerFailed",
            "Cause": (
                "The runner could not go on (see the execution history). Its lease expires; the "
                "sweep starts a runner that adopts the run in flight."
            ),
        },
    },
}


def check(definition: dict[str, Any]) -> list[str]:
    """Every transition names a state, every state is reachable, every Lambda step retries by
    the table."""
    states = definition["States"]
    problems = []
    edges: dict[str, list[str]] = {}
    for name, state in states.items():
        targets = [state[k] for k in ("Next", "Default") if k in state]
        targets += [c["Next"] for c in state.get("Choices", [])]
        targets += [c["Next"] for c in state.get("Catch", [])]
        edges[name] = targets
        problems += [f"{name}: goes to {t}, which is no state" for t in targets if t not in states]
        if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke"):
            policies = [LANE, START, STATUS, AWAIT, CANCEL, CANCEL_ABANDONED, REPORT]
            if not any(state["Retry"] is p for p in policies):
                problems.append(f"{name}: retries by no policy of the table")
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += edges[name]
    problems += [f"{name}: unreachable from {definition['StartAt']}"
                 for name in states if name not in seen]
    return problems


def self_test() -> int:
    """A definition with one mistake of each kind the check finds: each must be found."""
    broken = {"StartAt": "A", "States": {
        "A": invoke("Lane", {}, next="Nowhere", retry=LANE),
        "LaneLost": {"Type": "Succeed"},
        "B": {"Type": "Succeed"},
        "C": invoke("Lane", {}, next="B", retry=[retry(AWS, 1, 1, "own")]),
    }}
    expected = ["A: goes to Nowhere, which is no state", "C: retries by no policy of the table",
                "B: unreachable from A", "C: unreachable from A"]
    found = check(broken)
    if sorted(found) != sorted(expected):
        print(f"statemachine/build.py self-test: expected {expected}, found {found}")
        return 1
    print(f"statemachine/build.py self-test: {len(expected)} planted mistakes found")
    return 0


def render(value: Any, indent: int = 0, used: int = 0) -> str:
    """JSON, two spaces a level, with an object or array on one line when it fits WIDTH."""
    flat = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and value:
        flat = "{ " + ", ".join(f"{json.dumps(k)}: {render(v, 0, WIDTH)}"
                                for k, v in value.items()) + " }"
    elif isinstance(value, list) and value:
        flat = "[" + ", ".join(render(v, 0, WIDTH) for v in value) + "]"
    if not isinstance(value, (dict, list)) or not value or used + len(flat) <= WIDTH:
        if "\n" not in flat:
            return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            key = f"{json.dumps(k)}: "
            lines.append(pad + key + render(v, indent + 2, indent + 2 + len(key)))
        return "{\n" + ",\n".join(lines) + "\n" + " " * indent + "}"
    items = [pad + render(v, indent + 2, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    problems = check(DEFINITION)
    for problem in problems:
        print(f"statemachine/build.py: {problem}", file=sys.stderr)
    if problems:
        return 1
    built = render(DEFINITION) + "\n"
    if sys.argv[1:] == ["--check"]:
        if OUTPUT.read_text() != built:
            print("statemachine/ferry.asl.json differs from what statemachine/build.py builds: "
                  "edit build.py, then run `python3 statemachine/build.py`", file=sys.stderr)
            return 1
        print("statemachine/ferry.asl.json is what statemachine/build.py builds")
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    OUTPUT.write_text(built)
    print(f"wrote {OUTPUT} ({len(DEFINITION['States'])} states)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
