"""Ferry's whole main job on one machine: the harness behind `make demo` and `make e2e`.

TEST AND DEMO INFRASTRUCTURE. What stands in for what:

| AWS                          | here                                                        |
|------------------------------|-------------------------------------------------------------|
| S3, SQS, SNS, FSx, DataSync  | the emulator (emulator/: moto + Ferry's FSx/DataSync extension) |
| DynamoDB (the lane table)    | moto's DynamoDB in the emulator                              |
| Lambda                       | a local Invoke + Runtime API running the real binaries (lambdas.py) |
| Step Functions (API)         | moto: the entries (s3-trigger, submit) and a runner's hand-over call StartExecution there |
| Step Functions (running)     | the launcher: every execution started in moto is run with aws-local-stepfunctions on statemachine/ferry.asl.json (statemachine.py) |
| SQS → Lambda event source    | `deliver()`: receive, build Lambda's SQS event, invoke, delete what succeeded |
| EventBridge Scheduler        | `run_schedule()`: template.yaml's schedule input to its function; `sweep()`: the sweep's; `datasync_check()` (and `start_datasync_checks()`): DataSyncCheckSchedule's |
| EventBridge (DataSync events) | the event router (eventbridge.py): the emulator's DataSync events, through template.yaml's DataSyncEventRule, to datasync-event; `drop_events()`, `duplicate_events()`, `delay_events()`, `reorder_events()` |
| EventBridge (Step Functions events) | each runner execution that ends aborted or failed: its "Step Functions Execution Status Change" event, through template.yaml's RunnerStoppedRule, to submit (`runner_stop_events = False` loses them all) |

Usage::

    with LocalFerry("demo") as ferry:
        bucket = ferry.bucket("ferry-data-repository")
        fs = ferry.file_system(bucket)
        ferry.start_functions(routes=[...])
        ...
        ferry.settle(lane_of_fs(fs))   # every job of the lane ended, its runner gone
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import function_url, paths, processes, template
from .emulator_process import ACCOUNT, DATASYNC_ACCOUNT, REGION, Emulator
from .eventbridge import EventDelivery, EventRouter, RoutedEvent
from .eventpattern import EventPattern
from .lambdas import Functions, Invocation
from .statemachine import LocalStateMachine, Run

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ferry-local"
#: The parameters the harness deploys template.yaml with (the others at their defaults): every
#: file system and DataSync task of the local account is Ferry's to act on, and Ferry creates
#: the DataSync tasks jobs define (the template's defaults, none and off, are closed:
#: local/tests/test_access.py).
DEPLOY_PARAMETERS = {"FileSystemIds": "*", "DataSyncTaskArns": "*", "ManageDataSyncTasks": "true"}


def function_key(binary: str) -> str:
    """The access key a function signs with, so that the emulator knows whose policy applies
    (`ferry-start-task` → `AKIAFERRYSTARTTASK`)."""
    return "AKIA" + binary.upper().replace("-", "")


def function_principal(binary: str) -> str:
    """What AWS would name the function's role session in an AccessDenied message."""
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/ferry-local-{binary}/{binary}"


SUBNET = "subnet-0123456789abcdef0"
#: The template's DefinitionSubstitutions, as Lambda ARNs whose names are the binaries.
FUNCTION_ARNS = {
    "StartTaskFunctionArn": "ferry-start-task",
    "TaskStatusFunctionArn": "ferry-task-status",
    "CancelTaskFunctionArn": "ferry-cancel-task",
    "NotifyFunctionArn": "ferry-notify",
    "LaneFunctionArn": "ferry-lane",
}
#: The lane table's name in the emulator.
LANE_TABLE = "ferry-lanes"
#: Job states that are not over yet.
OPEN_STATES = ("pending", "running")
#: template.yaml's rule for DataSync's events, and the schedule that checks waiting runners.
DATASYNC_EVENT_RULE = "DataSyncEventRule"
DATASYNC_CHECK_SCHEDULE = "DataSyncCheckSchedule"
#: template.yaml's rule for the runner executions' status change events.
RUNNER_STOPPED_RULE = "RunnerStoppedRule"


def lane_of_fs(file_system_id: str) -> str:
    return f"fsx:{file_system_id}"


def lane_of_task(task_arn: str) -> str:
    return f"datasync:{task_arn}"


@dataclass
class Report:
    """One SNS message as an SQS subscriber receives it (not raw: the SNS envelope)."""

    subject: str
    message: str
    attributes: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def format(self) -> str:
        return self.attributes.get("format", "")

    @property
    def json(self) -> dict[str, Any]:
        """The report (`ferry.completion-report/1`) of a `format=json` message."""
        return json.loads(self.message)


class Inbox:
    """An SQS queue subscribed to the report topic: what a subscriber receives."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.received: list[Report] = []

    def poll(self, wait_seconds: int = 1) -> list[Report]:
        """Receives what is there (long poll up to `wait_seconds`), deletes it, returns it."""
        got = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=wait_seconds)
        reports = []
        for message in got.get("Messages", []):
            envelope = json.loads(message["Body"])
            reports.append(Report(
                subject=envelope.get("Subject", ""), message=envelope["Message"],
                attributes={k: v["Value"] for k, v in
                            envelope.get("MessageAttributes", {}).items()}))
            self._sqs.delete_message(QueueUrl=self.queue_url,
                                     ReceiptHandle=message["ReceiptHandle"])
        self.received.extend(reports)
        return reports

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Report]:
        """Everything received so far, once there are at least `count` messages."""
        processes.wait_for(lambda: self.poll(0) is not None and len(self.received) >= count,
                           timeout, interval=0.1,
                           what=f"{count} report message(s) (got {len(self.received)})")
        return list(self.received)


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for received messages (Lambda developer guide, "Using Lambda with
    Amazon SQS": the event an SQS event source mapping sends)."""
    records = []
    for m in messages:
        body = m["Body"]
        records.append({
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": body,
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        })
    return {"Records": records}


@dataclass
class Delivery:
    """One invocation of s3-trigger by the (emulated) SQS event source mapping."""

    event: dict[str, Any]
    invocation: Invocation
    objects: int
    deleted: int
    failed: list[str]


class LocalFerry:
    """The emulator, Ferry's functions and the state machine, started and stopped together."""

    def __init__(self, run: str, *, step_seconds: float = 0.3, wait_ms: int = 300,
                 retry_ms: int = 200, time_scale: float | None = None,
                 lease_seconds: int = 900, busy_poll_max_seconds: int = 60) -> None:
        self.log_dir = paths.log_dir(run)
        self.step_seconds = step_seconds
        self.wait_ms = wait_ms
        self.retry_ms = retry_ms
        #: Runner waits, callback heartbeats and timeouts, and the event faults' and DataSync
        #: checks' seconds last this fraction of what was asked (instead of `wait_ms`).
        self.time_scale = time_scale
        self.lease_seconds = lease_seconds
        self.busy_poll_max_seconds = busy_poll_max_seconds
        #: False: the launcher leaves new runner executions alone (for a while).
        self.launch = True
        #: Called with every event of every runner the launcher runs (the demo's progress).
        self.on_runner_event: Callable[[Run, dict[str, Any]], None] | None = None
        self._launcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self.emulator = Emulator(self.log_dir)
        #: Attempts of the harness's own AWS calls (tests that throttle every call raise it, so
        #: that the harness's bookkeeping does not fail where Ferry is under test).
        self.client_attempts = 3
        self.functions: Functions | None = None
        #: submit's function URL (started with the functions; the CLI's FERRY_SUBMIT_URL).
        self.submit_url: function_url.FunctionUrl | None = None
        #: Routes the emulator's DataSync events to their function (start_functions starts it).
        self.router: EventRouter | None = None
        #: DataSyncCheckSchedule's deliveries by `start_datasync_checks`: (wall time, answer).
        self.datasync_checks: list[tuple[float, Invocation]] = []
        self._checks_stopping: threading.Event | None = None
        #: False: runner executions that end aborted or failed send no status change event (as
        #: if EventBridge lost them all): only lease expiry and the sweep replace them.
        self.runner_stop_events = True
        #: Each status change event a runner's end sent through RunnerStoppedRule: (wall time
        #: of the end, the event, submit's answer).
        self.stop_deliveries: list[tuple[float, dict[str, Any], Invocation]] = []
        self.machine: LocalStateMachine | None = None
        self.state_machine_arn = ""
        self.topic_arn = ""
        self._runs: dict[str, Run] = {}
        self._stack = contextlib.ExitStack()
        #: What template.yaml is deployed with (`grant` changes it while the functions run).
        self.parameters: dict[str, str] = dict(DEPLOY_PARAMETERS)
        #: The IAM refusals `take_denied` has handed out already.
        self._denied_seen = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "LocalFerry":
        self._stack.enter_context(self.emulator)
        self.ctl.clock(mode="fast", step_seconds=self.step_seconds)
        definition = paths.DEFINITION.read_text()
        for placeholder, name in FUNCTION_ARNS.items():
            definition = definition.replace("${" + placeholder + "}", self.function_arn(name))
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name="ferry", definition=definition, roleArn=ROLE, type="STANDARD",
        )["stateMachineArn"]
        self.topic_arn = self.client("sns").create_topic(Name="ferry-reports")["TopicArn"]
        ddb = self.client("dynamodb")
        ddb.create_table(TableName=LANE_TABLE, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        return self

    def start_functions(self, routes: list[dict[str, Any]] | None = None,
                        env: Mapping[str, str] | None = None,
                        timeouts: Mapping[str, int] | None = None) -> Functions:
        """Starts the functions, configured as template.yaml configures them, against the
        emulator, and the event router. `routes` is s3-trigger's FERRY_ROUTES (without routes,
        s3-trigger, which requires them, is not started); `env` is added to every function's
        environment (it wins over the variables template.yaml sets on a function); `timeouts`
        overrides some functions' Timeout (seconds)."""
        endpoint = self.emulator.url
        common = {
            # Per service, as docs/configuration.md documents: a service missing here would
            # be sent to AWS itself and fail, so the list is checked by every run.
            **{f"AWS_ENDPOINT_URL_{s}": endpoint
               for s in ("FSX", "DATASYNC", "SFN", "S3", "SNS", "DYNAMODB")},
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "FERRY_MAX_PATHS": "32",
            "FERRY_LANE_TABLE": LANE_TABLE,
            "FERRY_LEASE_SECONDS": str(self.lease_seconds),
            "FERRY_BUSY_POLL_MAX_SECONDS": str(self.busy_poll_max_seconds),
            **(env or {}),
        }
        names = paths.FUNCTIONS if routes else tuple(
            n for n in paths.FUNCTIONS if n != "ferry-s3-trigger")
        per_function = {name: {**self._function_env(name, common),
                               "AWS_ACCESS_KEY_ID": function_key(name)} for name in names}
        self.grant(self.parameters, names)
        if routes:
            per_function["ferry-s3-trigger"]["FERRY_ROUTES"] = json.dumps(routes)
        if "FERRY_ACCESS_POLICY" not in (env or {}):
            per_function["ferry-submit"]["FERRY_ACCESS_POLICY"] = json.dumps(
                function_url.LOCAL_POLICY)
        self.functions = Functions(self.log_dir, common, per_function, names=names,
                                   timeouts=timeouts)
        self._stack.enter_context(self.functions)
        functions = self.functions

        def invoke_submit(payload: dict[str, Any]) -> tuple[bool, Any]:
            answer = functions.invoke("ferry-submit", payload)
            return answer.ok, answer.payload

        self.submit_url = self._stack.enter_context(function_url.FunctionUrl(invoke_submit))
        self._start_router(self.functions)
        self.machine = LocalStateMachine(self.functions.url, self.wait_ms, self.retry_ms,
                                         sfn_url=self.emulator.url,
                                         state_machine_arn=self.state_machine_arn,
                                         time_scale=self.time_scale)
        self._stack.callback(self.machine.abort_all)
        self._launcher = threading.Thread(target=self._launch_runners, name="runner launcher",
                                          daemon=True)
        self._launcher.start()
        self._stack.callback(self._stopping.set)
        return self.functions

    def _function_env(self, name: str, common: Mapping[str, str]) -> dict[str, str]:
        """The variables template.yaml sets on the function itself, the template's own resources
        being the harness's (its state machine, report topic, lane table); what `common` sets
        already is left to it."""
        resources = {"StateMachine": self.state_machine_arn, "ReportTopic": self.topic_arn,
                     "LaneTable": LANE_TABLE}
        return {k: v for k, v in template.function_environment(
                    name, resources, self.parameters).items()
                if k not in common}

    def grant(self, parameters: Mapping[str, str],
              names: Iterable[str] = paths.FUNCTIONS) -> None:
        """Gives each function the DataSync permissions template.yaml gives it when deployed
        with `parameters`: the emulator then refuses the DataSync calls they do not allow, as
        AWS would (ferry_emulator.iam). The functions' environment stays as started (for
        DataSync, `listed` and `every` run the same code: IAM decides)."""
        self.parameters = dict(parameters)
        for name in names:
            statements = template.function_statements(name, self.parameters, "datasync",
                                                      account=DATASYNC_ACCOUNT)
            self.ctl.register_policy(function_key(name), statements,
                                     principal=function_principal(name))

    def take_denied(self) -> list[dict[str, str]]:
        """The IAM refusals since the last call: `{"key", "principal", "action", "resource"}`."""
        denied = self.ctl.iam()["denied"]
        new, self._denied_seen = denied[self._denied_seen:], len(denied)
        return new

    def _start_router(self, functions: Functions) -> None:
        """What EventBridge does with DataSync's events: template.yaml's DataSyncEventRule
        sends those it matches to its function. The rule's `${AWS::AccountId}` is the account
        the emulated DataSync puts in its ARNs (moto's)."""
        rule = template.event_rule(DATASYNC_EVENT_RULE, account=DATASYNC_ACCOUNT)
        self.router = EventRouter(self.ctl.events, EventPattern(rule.pattern),
                                  lambda event: functions.invoke(rule.binary, event),
                                  time_scale=self.time_scale)
        self.router.start()
        self._stack.callback(self.router.stop)

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> "LocalFerry":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ plumbing

    @property
    def ctl(self) -> Any:
        return self.emulator.ctl

    def client(self, service: str, attempts: int | None = None) -> Any:
        return self.emulator.client(service, attempts or self.client_attempts)

    @staticmethod
    def function_arn(name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    # ------------------------------------------------------------------ resources

    def bucket(self, name: str) -> str:
        self.client("s3").create_bucket(Bucket=name)
        return name

    def file_system(self, bucket: str) -> str:
        """An FSx for Lustre file system linked to the whole bucket (import and export path:
        files map one to one to objects)."""
        fs = self.client("fsx").create_file_system(
            FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[SUBNET],
            LustreConfiguration={"DeploymentType": "SCRATCH_2", "ImportPath": f"s3://{bucket}",
                                 "ExportPath": f"s3://{bucket}"})
        return fs["FileSystem"]["FileSystemId"]

    def datasync_task(self, name: str, source_bucket: str, source_dir: str,
                      destination_bucket: str, destination_dir: str = "/",
                      options: Mapping[str, str] | None = None) -> str:
        ds = self.client("datasync")
        src = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{source_bucket}",
                                    Subdirectory=source_dir,
                                    S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
        dst = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{destination_bucket}",
                                    Subdirectory=destination_dir,
                                    S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
        return ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst, Name=name,
                              Options=dict(options or {}))["TaskArn"]

    def queue(self, name: str) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        return url, arn

    def notify_uploads(self, bucket: str, queue_name: str) -> tuple[str, str]:
        """Sends every ObjectCreated notification of the bucket to a new queue (a deployment
        filters them per route with `ferry notifications`; the tests keep every upload, to
        see the unmatched ones recorded). Returns (url, arn)."""
        url, arn = self.queue(queue_name)
        self.client("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
                {"Id": f"ferry-{queue_name}", "QueueArn": arn,
                 "Events": ["s3:ObjectCreated:*"]}]})
        return url, arn

    def subscribe(self, name: str, filter_policy: Mapping[str, list[str]]) -> Inbox:
        """A queue subscribed to the report topic with a filter policy on the message
        attributes (`format`, `status`, `job`, `kind`), as docs/reports.md ("SNS messages") suggests."""
        url, arn = self.queue(name)
        self.client("sns").subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps(filter_policy)})
        return Inbox(self.client("sqs"), url)

    # ------------------------------------------------------------------ uploads → s3-trigger

    def receive_uploads(self, queue_url: str, objects: int, timeout: float = 60.0,
                        progress: Callable[[int], None] | None = None,
                        ) -> list[dict[str, Any]]:
        """Receives messages until they hold `objects` S3 records (the test event S3 sends
        when a notification is configured is kept: s3-trigger ignores it). `progress` is
        called with the number of records received so far after each receive."""
        sqs = self.client("sqs")
        received: list[dict[str, Any]] = []
        records = 0

        def enough() -> bool:
            nonlocal records
            while records < objects:  # receive without pausing while messages come
                got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0, VisibilityTimeout=600,
                                          AttributeNames=["All"], MessageAttributeNames=["All"])
                messages = got.get("Messages", [])
                received.extend(messages)
                records += sum(_s3_records(m["Body"]) for m in messages)
                if progress is not None:
                    progress(records)
                if not messages:
                    break
            return records >= objects

        processes.wait_for(enough, timeout, interval=0.1,
                           what=f"notifications of {objects} uploads")
        return received

    def drain(self, queue_url: str) -> int:
        """Deletes every visible message of the queue (PurgeQueue allows one call a minute)."""
        sqs = self.client("sqs")
        deleted = 0
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return deleted
            for m in got:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            deleted += len(got)

    def deliver(self, messages: list[dict[str, Any]], queue_url: str, queue_arn: str,
                batch_size: int = 10, delete: bool = True) -> list[Delivery]:
        """What the SQS event source mapping does: invoke s3-trigger with batches of up to
        `batch_size` messages (template.yaml's TriggerBatchSize) and, with
        ReportBatchItemFailures, delete the messages of each batch that are not reported
        failed."""
        if self.functions is None:
            raise RuntimeError("start_functions() first")
        sqs = self.client("sqs")
        deliveries = []
        for start in range(0, len(messages), batch_size):
            batch = messages[start:start + batch_size]
            event = sqs_event(batch, queue_arn)
            invocation = self.functions.invoke("ferry-s3-trigger", event)
            if invocation.ok:
                failed = [f["itemIdentifier"]
                          for f in invocation.payload.get("batchItemFailures", [])]
            else:
                failed = [m["MessageId"] for m in batch]  # the whole batch returns
            deleted = 0
            if delete:
                for m in batch:
                    if m["MessageId"] not in failed:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                        deleted += 1
            deliveries.append(Delivery(event, invocation, sum(_s3_records(m["Body"])
                                                              for m in batch), deleted, failed))
        return deliveries

    def deliver_until_done(self, messages: list[dict[str, Any]], queue_url: str,
                           queue_arn: str, batch_size: int = 10,
                           max_rounds: int = 5) -> list[Delivery]:
        """`deliver`, then delivers again what s3-trigger reported failed (or what a failed
        invocation returned), as SQS does once the visibility timeout ends, until every
        message is deleted (at most `max_rounds` deliveries of a message: template.yaml's
        redrive policy moves a message to the dead-letter queue after 5 receives)."""
        deliveries: list[Delivery] = []
        pending = list(messages)
        for _ in range(max_rounds):
            if not pending:
                return deliveries
            batch = self.deliver(pending, queue_url, queue_arn, batch_size=batch_size)
            deliveries.extend(batch)
            failed = {f for d in batch for f in d.failed}
            pending = [m for m in pending if m["MessageId"] in failed]
        if pending:
            raise AssertionError(f"{len(pending)} message(s) still failing after {max_rounds} "
                                 "deliveries: they would go to the dead-letter queue")
        return deliveries

    def queue_depth(self, queue_url: str) -> int:
        """Messages in the queue, visible or in flight."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    # ------------------------------------------------------------------ executions

    def executions(self) -> list[dict[str, Any]]:
        """Every execution started on the state machine (in the emulator's Step Functions),
        oldest first."""
        sfn = self.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn):
            found.extend(page["executions"])
        return sorted(found, key=lambda e: e["startDate"])

    def start_execution(self, input: Mapping[str, Any], name: str | None = None) -> str:
        """StartExecution on the emulator's Step Functions, as a scheduler or a person would
        (no name: Step Functions makes one up, as for EventBridge Scheduler targets)."""
        kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn,
                                  "input": json.dumps(input)}
        if name is not None:
            kwargs["name"] = name
        return self.client("stepfunctions").start_execution(**kwargs)["executionArn"]

    # ------------------------------------------------------------------ runners

    def _launch_runners(self) -> None:
        """What Step Functions does with a started execution: run it. Every execution started
        in the emulator (by s3-trigger, submit, the sweep or a runner's hand-over) is run
        locally, once."""
        sfn = self.client("stepfunctions", attempts=10)
        while not self._stopping.wait(0.1):
            if not self.launch:
                continue
            try:
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
                started = [e for page in pages for e in page["executions"]]
            except Exception:  # noqa: BLE001 - the emulator is stopping, or throttled by a test
                continue
            for execution in sorted(started, key=lambda e: e["startDate"]):
                if execution["executionArn"] not in self._runs and not self._stopping.is_set():
                    self._run_execution(execution["executionArn"], self.on_runner_event)

    def runners(self, lane: str | None = None) -> list[Run]:
        """The runner executions run so far (of `lane`), in the order they started."""
        return [r for r in list(self._runs.values())
                if lane is None or (isinstance(r.input, dict) and r.input.get("lane") == lane)]

    def stop_runner(self, run: Run) -> None:
        """StopExecution by hand: the execution ends (ABORTED) wherever it is."""
        run.abort()
        arn = next(a for a, r in self._runs.items() if r is run)
        self.client("stepfunctions").stop_execution(executionArn=arn, cause="stopped by hand")

    def lane_jobs(self, lane: str) -> dict[str, dict[str, Any]]:
        """Every job of `lane` in the lane table: id → {state, run, job (the queued record)}."""
        ddb = self.client("dynamodb")
        jobs: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "TableName": LANE_TABLE, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :job)",
            "ExpressionAttributeValues": {":pk": {"S": f"lane#{lane}"}, ":job": {"S": "job#"}}}
        while True:
            page = ddb.query(**kwargs)
            for item in page["Items"]:
                record = json.loads(item["doc_json"]["S"])
                jobs[record["id"]] = {"state": item["job_state"]["S"],
                                      "run": item.get("run_id", {}).get("S"), "job": record}
            if "LastEvaluatedKey" not in page:
                return jobs
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def lane_record(self, lane: str) -> dict[str, Any]:
        """The lane's own item: its lease (`lease_owner`, `lease_until`) and run in flight."""
        item = self.client("dynamodb").get_item(
            TableName=LANE_TABLE, ConsistentRead=True,
            Key={"pk": {"S": f"lane#{lane}"}, "sk": {"S": "lane"}}).get("Item", {})
        return {k: next(iter(v.values())) for k, v in item.items()}

    def cli_env(self) -> dict[str, str]:
        """The environment the `ferry` CLI needs to reach this deployment: the emulator for
        every service, its credentials and region, the lane table, the runner and submit's
        function URL."""
        env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": self.emulator.url,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": REGION, "FERRY_LANE_TABLE": LANE_TABLE,
               "FERRY_STATE_MACHINE_ARN": self.state_machine_arn}
        if self.submit_url is not None:
            env["FERRY_SUBMIT_URL"] = self.submit_url.url
        return env

    def run_in_flight(self, lane: str) -> dict[str, Any] | None:
        """The record of the lane's run in flight (its `doc_json`), or None."""
        run_id = self.lane_record(lane).get("run_id")
        if not run_id:
            return None
        item = self.client("dynamodb").get_item(
            TableName=LANE_TABLE, ConsistentRead=True,
            Key={"pk": {"S": f"lane#{lane}"}, "sk": {"S": f"run#{run_id}"}}).get("Item")
        return json.loads(item["doc_json"]["S"]) if item else None

    def settle(self, lane: str, timeout: float = 120.0, jobs: int | None = None,
               interval: float = 0.2) -> dict[str, dict[str, Any]]:
        """Waits until `lane` has work no more: at least `jobs` jobs (when given), none pending
        or running, no run in flight, and every runner of it ended. Returns its jobs. Each look
        reads the lane's whole partition, under the emulator's DynamoDB lock: a lane of
        thousands of jobs is looked at every few seconds (`interval`), not to slow its
        functions."""
        def settled() -> bool:
            found = self.lane_jobs(lane)
            if jobs is not None and len(found) < jobs:
                return False
            if any(j["state"] in OPEN_STATES for j in found.values()):
                return False
            if self.lane_record(lane).get("run_id"):
                return False
            return all(r.done for r in self.runners(lane))

        processes.wait_for(settled, timeout, interval=interval,
                           what=f"lane {lane} to finish its jobs "
                                f"({[(k[:12], v['state']) for k, v in self.lane_jobs(lane).items()]})")
        return self.lane_jobs(lane)

    def submit(self, payload: Mapping[str, Any]) -> Invocation:
        """Invokes submit (as a person, or the CLI, would)."""
        if self.functions is None:
            raise RuntimeError("start_functions() first")
        return self.functions.invoke("ferry-submit", dict(payload))

    def sweep(self) -> Invocation:
        """One run of the sweep schedule."""
        return self.submit(template.sweep_input())

    def run_started(self, on_event: Callable[[Run, dict[str, Any]], None] | None = None,
                    **kwargs: Any) -> list[Run]:
        """Starts a local run of each execution started in the emulator and not run yet (same
        name, same input); returns the runs (not waited for)."""
        return [self._run_execution(e["executionArn"], on_event, **kwargs)
                for e in self.executions() if e["executionArn"] not in self._runs]

    def run(self, input: Mapping[str, Any], name: str | None = None,
            on_event: Callable[[Run, dict[str, Any]], None] | None = None,
            **kwargs: Any) -> Run:
        """Starts an execution and its local run (not waited for)."""
        return self._run_execution(self.start_execution(input, name), on_event, **kwargs)

    def _run_execution(self, arn: str, on_event: Callable[[Run, dict[str, Any]], None] | None,
                       **kwargs: Any) -> Run:
        if self.machine is None:
            raise RuntimeError("start_functions() first")
        described = self.client("stepfunctions").describe_execution(executionArn=arn)
        run = self.machine.start(described["name"], json.loads(described["input"]),
                                 on_event=on_event, **kwargs)
        self._runs[arn] = run
        threading.Thread(target=self._send_stop_event, args=(arn, described, run),
                         name=f"end of {run.name}", daemon=True).start()
        return run

    def _send_stop_event(self, arn: str, described: Mapping[str, Any], run: Run) -> None:
        """What Step Functions and EventBridge do when a runner execution ends: a "Step
        Functions Execution Status Change" event (Step Functions developer guide, "Automating
        Step Functions event delivery with EventBridge": `detail` has the execution's ARN, name,
        status and input as a string) that RunnerStoppedRule's pattern matches goes to its
        function, invoked asynchronously (here: in this thread, no retries)."""
        run._done.wait()  # noqa: SLF001 - the run's end, as the launcher sees it
        status = {"FAILED": "FAILED", "ABORTED": "ABORTED"}.get(run.status or "", "SUCCEEDED")
        if self._stopping.is_set() or not self.runner_stop_events or self.functions is None:
            return
        rule = template.event_rule(RUNNER_STOPPED_RULE,
                                   resources={"StateMachine": self.state_machine_arn})
        now = dt.datetime.now(dt.timezone.utc)
        event = {
            "version": "0", "id": str(uuid.uuid4()),
            "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
            "account": ACCOUNT, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
            "resources": [arn],
            "detail": {
                "executionArn": arn, "stateMachineArn": self.state_machine_arn,
                "name": run.name, "status": status,
                "startDate": int(described["startDate"].timestamp() * 1000),
                "stopDate": int(now.timestamp() * 1000),
                "input": described["input"], "inputDetails": {"included": True},
                "output": None, "outputDetails": None,
                "error": run.error if status != "SUCCEEDED" else None,
                "cause": None,
            },
        }
        if not EventPattern(rule.pattern).matches(event):
            return
        ended = time.time()
        try:
            answer = self.functions.invoke(rule.binary, event)
        except OSError:
            return  # the functions stopped
        self.stop_deliveries.append((ended, event, answer))

    def run_schedule(self, logical_id: str, parameters: Mapping[str, Any],
                     scheduled_time: dt.datetime | None = None,
                     attempt: int = 1) -> Invocation:
        """One delivery of a schedule of template.yaml, as EventBridge Scheduler makes it: the
        target input with its context attributes (`attempt` > 1: a retried delivery of the
        same occurrence), to the target's function (submit, or datasync-event)."""
        if self.functions is None:
            raise RuntimeError("start_functions() first")
        schedule_input = template.schedule_input(logical_id, parameters, scheduled_time,
                                                 attempt)
        return self.functions.invoke(template.schedule_target(logical_id), schedule_input)

    # ------------------------------------------------------------------ DataSync events

    def datasync_check(self) -> Invocation:
        """One run of DataSyncCheckSchedule (`{"check": {}}` to datasync-event): wakes each
        runner whose DataSync execution ended without its event reaching it, heartbeats the
        others."""
        return self.run_schedule(DATASYNC_CHECK_SCHEDULE, {})

    def start_datasync_checks(self, every_seconds: float) -> None:
        """Runs `datasync_check` every `every_seconds` (deployed seconds: scaled by the time
        scale, when there is one) in the background until `stop_datasync_checks` or the end;
        answers are kept in `datasync_checks`."""
        self.stop_datasync_checks()
        stopping = self._checks_stopping = threading.Event()
        period = every_seconds * (self.time_scale or 1.0)

        def tick() -> None:
            while not stopping.wait(period):
                try:
                    self.datasync_checks.append((time.time(), self.datasync_check()))
                except OSError:
                    return  # the functions stopped

        threading.Thread(target=tick, name="datasync checks", daemon=True).start()
        self._stack.callback(stopping.set)

    def stop_datasync_checks(self) -> None:
        if self._checks_stopping is not None:
            self._checks_stopping.set()

    def _event_router(self) -> EventRouter:
        if self.router is None:
            raise RuntimeError("start_functions() first: it starts the event router")
        return self.router

    def drop_events(self, fraction: float = 1.0, seed: int | None = None) -> None:
        """DataSync's events are lost before the rule (best effort): all, or a seeded
        fraction of those the rule matches."""
        self._event_router().drop(fraction, seed)

    def duplicate_events(self, copies: int = 2) -> None:
        """Each event the rule matches reaches datasync-event `copies` times in all."""
        self._event_router().duplicate(copies)

    def delay_events(self, seconds: float) -> None:
        """Each event the rule matches reaches datasync-event `seconds` late (deployed seconds:
        scaled by the time scale, when there is one)."""
        self._event_router().delay(seconds)

    def reorder_events(self, batch: int = 2, max_hold_seconds: float | None = None) -> None:
        """Events the rule matches are held back until `batch` wait (or the oldest has waited
        `max_hold_seconds`, deployed seconds), then delivered newest first."""
        self._event_router().reorder(batch, max_hold_seconds)

    def clear_event_faults(self) -> None:
        """Every event delivered once, in order, at once again (held ones go out now)."""
        self._event_router().clear_faults()

    @property
    def event_deliveries(self) -> list[EventDelivery]:
        """Every delivery of an event to datasync-event: the event, when its change happened
        (emulated clock), was read, delivered and answered (wall clock), the answer."""
        return list(self._event_router().deliveries)

    @property
    def routed_events(self) -> list[RoutedEvent]:
        """Every event the router read, with its fate: unmatched, dropped or routed."""
        return list(self._event_router().routed)

    # ------------------------------------------------------------------ emulator state

    def fsx_tasks(self, file_system_id: str) -> list[dict[str, Any]]:
        return [t for t in self.ctl.state()["fsx"]["tasks"] if t["FileSystemId"] == file_system_id]

    def datasync_executions(self, task_arn: str) -> list[dict[str, Any]]:
        ds = self.client("datasync")
        arns = [e["TaskExecutionArn"] for page in
                ds.get_paginator("list_task_executions").paginate(TaskArn=task_arn)
                for e in page["TaskExecutions"]]
        return [ds.describe_task_execution(TaskExecutionArn=a) for a in arns]


def _s3_records(body: str) -> int:
    try:
        parsed = json.loads(body)
    except ValueError:
        return 0
    return len(parsed.get("Records", [])) if isinstance(parsed, dict) else 0


def unique(prefix: str) -> str:
    """A name no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

