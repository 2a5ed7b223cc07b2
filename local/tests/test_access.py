"""Who may do what (issue 26), end to end: the `ferry` CLI signs its requests to submit's
function URL (the harness's, which checks SigV4 as Lambda does: ferry_local/function_url.py),
the real submit binary reads the verified caller and applies the access policy
(`function_url.LOCAL_POLICY`), and the lane table and reports name the verified ARN.

Also the harness's signature check itself, against botocore's independent signer.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import subprocess
from typing import Any, Callable

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import World, report_of
from ferry_emulator import iam
from ferry_local import function_url, paths, template
from ferry_local.emulator_process import ACCOUNT, DATASYNC_ACCOUNT, REGION
from ferry_local.ferry import DEPLOY_PARAMETERS, ROLE, LocalFerry, lane_of_fs, unique

ALICE = f"arn:aws:sts::{ACCOUNT}:assumed-role/hpc-users/alice"
OPERATOR = function_url.IDENTITIES["testing"].arn


def ferry_as(ferry: LocalFerry, key_id: str | None, *args: str,
             secret: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as the harness identity `key_id` (None: the default, `testing`)."""
    env = ferry.cli_env()
    if key_id is not None:
        env.update(function_url.identity_env(key_id))
    if secret is not None:
        env["AWS_SECRET_ACCESS_KEY"] = secret
    return subprocess.run([str(paths.cli()), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def job_file(tmp_path: pathlib.Path, job: dict[str, Any]) -> str:
    path = tmp_path / f"{job['name']}.json"
    path.write_text(json.dumps(job))
    return str(path)


def test_whoami_names_the_verified_caller_and_its_grants(ferry: LocalFerry) -> None:
    out = ferry_as(ferry, "ASIALOCALALICE", "whoami")
    assert out.returncode == 0, out.stderr
    assert f"you are {ALICE} (verified by submit's function URL)" in out.stdout
    assert "'hpc-users' allows submit, cancel of fsx_export, fsx_import on every lane" in out.stdout
    mine = json.loads(ferry_as(ferry, None, "whoami", "--json").stdout)
    assert mine["caller"] == OPERATOR and mine["verified"] is True
    assert mine["grants"] == ["'local-operator' allows submit, cancel, cancel-others of every "
                              "kind on every lane"]


def test_the_policy_refuses_a_release_and_queues_an_export_under_the_callers_arn(
        ferry: LocalFerry, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n"})
    release = job_file(tmp_path, {"name": unique("e2e-release"), "kind": "fsx_release",
                                  "file_system_id": fs, "paths": ["results"],
                                  "release": {"days_since_last_access": 7}})
    out = ferry_as(ferry, "ASIALOCALALICE", "submit", release)
    assert out.returncode == 1
    assert out.stderr.startswith(f"ferry: access denied: {ALICE} may not submit fsx_release "
                                 f"jobs on lane fsx:{fs}: no rule allows it"), out.stderr
    assert ferry.lane_jobs(lane_of_fs(fs)) == {}, "nothing queued"
    export = job_file(tmp_path, {"name": unique("e2e-export"), "kind": "fsx_export",
                                 "file_system_id": fs, "paths": ["results"]})
    out = ferry_as(ferry, "ASIALOCALALICE", "submit", export, "--json")
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout.splitlines()[0])["job_id"]
    assert ferry.lane_jobs(lane_of_fs(fs))[job]["job"]["source"] == f"submit by {ALICE}"
    # Bob is in the same group: his rule cancels his own jobs, not Alice's.
    out = ferry_as(ferry, "ASIALOCALBOB", "cancel", job)
    assert out.returncode == 1
    assert "may not cancel-others fsx_export jobs" in out.stderr, out.stderr
    assert f'its source is "submit by {ALICE}"' in out.stderr


@pytest.mark.parametrize("who", ["no permission", "wrong secret"])
def test_lambda_refuses_a_caller_iam_does_not_allow_before_submit_runs(
        who: str, ferry: LocalFerry) -> None:
    assert ferry.submit_url is not None
    before = len(ferry.submit_url.requests)
    out = (ferry_as(ferry, "AKIALOCALMALLORY", "whoami") if who == "no permission"
           else ferry_as(ferry, "ASIALOCALALICE", "whoami", secret="not-alices-secret"))
    assert out.returncode == 1
    assert out.stderr == "ferry: refused by Lambda (HTTP 403): Forbidden\n"
    assert [status for _, status in ferry.submit_url.requests[before:]] == [403]


@pytest.mark.parametrize(("parameters", "mode"), [
    ({}, "none"),
    ({"FileSystemIds": "*", "DataSyncTaskArns": "*"}, "every"),
    ({"FileSystemIds": "fs-0123456789abcdef0,fs-0fedcba9876543210",
      "DataSyncTaskArns": "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f60718"},
     "listed"),
])
def test_a_deployment_that_names_no_resources_is_closed(parameters: dict[str, str],
                                                        mode: str) -> None:
    """What start-task is told by template.yaml (its conditions evaluated as CloudFormation
    would): the template's defaults name nothing, so it starts nothing (closed by default)."""
    env = template.function_environment("ferry-start-task", {}, parameters)
    assert (env["FERRY_FILE_SYSTEMS"], env["FERRY_DATASYNC_TASKS"]) == (mode, mode)


# --------------------------------------------------- DataSync grants scoped by Ferry's tags

DS = f"arn:aws:datasync:{REGION}:{DATASYNC_ACCOUNT}"
LISTED = f"{DS}:task/task-0a1b2c3d4e5f60718"
FERRYS = f"{DS}:task/task-00000000000000009"  # a task Ferry created (ferry:task-name)
FOREIGN = f"{DS}:task/task-0ffffffffffffffff"  # neither listed nor Ferry's
#: The deployments: DataSyncTaskArns, ManageDataSyncTasks.
DEPLOYMENTS = {
    "list+manage": (LISTED, "true"), "list": (LISTED, "false"), "none+manage": ("", "true"),
    "every": ("*", "false"), "every+manage": ("*", "true"), "none": ("", "false"),
}
NAME = {"aws:ResourceTag/ferry:task-name": "nightly"}
KEY = {"aws:RequestTag/ferry:idempotency-key": "run-1"}
MARKED = {"aws:ResourceTag/ferry:idempotency-key": "run-1"}  # an execution Ferry started
ALL = set(DEPLOYMENTS)
MANAGE = {"list+manage", "none+manage", "every+manage"}
# (function, action, resource, context) → the deployments whose IAM allows it.
CASES = [
    # Starts: a listed task, a task Ferry created, another task; always with Ferry's tag.
    ("start-task", "StartTaskExecution", LISTED, KEY, ALL - {"none", "none+manage"}),
    ("start-task", "StartTaskExecution", LISTED, {}, set()),
    ("start-task", "StartTaskExecution", FERRYS, {**NAME, **KEY}, MANAGE | {"every"}),
    ("start-task", "StartTaskExecution", FOREIGN, KEY, {"every", "every+manage"}),
    ("start-task", "TagResource", f"{FERRYS}/execution/exec-1", KEY, ALL - {"none", "list"}),
    ("start-task", "TagResource", f"{LISTED}/execution/exec-1", KEY, ALL - {"none"}),
    ("start-task", "ListTagsForResource", f"{FOREIGN}/execution/exec-2", {},
     ALL - {"none"}),
    ("start-task", "TagResource", f"{LISTED}/execution/exec-1", {"aws:RequestTag/x": "y"},
     set()),
    # Tasks: created only tagged as Ferry's; only Ferry's read, updated, untagged, tagged.
    ("start-task", "CreateTask", f"{DS}:task/task-pending",
     {"aws:RequestTag/ferry:task-name": "nightly"}, MANAGE),
    ("start-task", "CreateTask", f"{DS}:location/loc-1",
     {"aws:RequestTag/ferry:task-name": "nightly"}, MANAGE),
    ("start-task", "CreateTask", f"{DS}:task/task-pending", {}, set()),
    ("start-task", "UpdateTask", FERRYS, NAME, MANAGE),
    ("start-task", "UpdateTask", FOREIGN, {}, set()),
    ("start-task", "UpdateTask", LISTED, {}, set()),
    ("start-task", "DescribeTask", FOREIGN, {}, set()),
    ("start-task", "UntagResource", FOREIGN, {}, set()),
    ("start-task", "TagResource", FOREIGN, {"aws:RequestTag/team": "ml"}, set()),
    ("start-task", "ListTagsForResource", FOREIGN, {}, MANAGE),
    # Executions: only those Ferry started (tagged at their start) are read or cancelled.
    ("task-status", "DescribeTaskExecution", f"{FERRYS}/execution/exec-1", MARKED,
     MANAGE | {"every"}),
    ("task-status", "DescribeTaskExecution", f"{LISTED}/execution/exec-1", MARKED,
     ALL - {"none"}),
    ("task-status", "DescribeTaskExecution", f"{LISTED}/execution/exec-2", {}, set()),
    ("datasync-event", "DescribeTaskExecution", f"{FERRYS}/execution/exec-1", MARKED,
     MANAGE | {"every"}),
    ("datasync-event", "DescribeTaskExecution", f"{FOREIGN}/execution/exec-2", {}, set()),
    ("cancel-task", "CancelTaskExecution", f"{FERRYS}/execution/exec-1", MARKED,
     MANAGE | {"every"}),
    ("cancel-task", "CancelTaskExecution", f"{LISTED}/execution/exec-2", {}, set()),
    ("cancel-task", "CancelTaskExecution", f"{FOREIGN}/execution/exec-2", {}, set()),
]


@pytest.mark.parametrize(("function", "action", "resource", "context", "allowed_in"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_datasync_grants_touch_only_what_the_deployment_names_and_ferrys_own(
        function: str, action: str, resource: str, context: dict[str, str],
        allowed_in: set[str]) -> None:
    """template.yaml's DataSync grants, evaluated as IAM would (ferry_emulator.iam) for each
    deployment: the tasks Ferry creates are started and followed to their end with an allow-list
    set; nothing Ferry did not start or create is updated, described or cancelled."""
    got = set()
    for deployment, (arns, manages) in DEPLOYMENTS.items():
        statements = template.function_statements(
            f"ferry-{function}", {"DataSyncTaskArns": arns, "ManageDataSyncTasks": manages},
            "datasync", account=DATASYNC_ACCOUNT)
        request = iam.Request(f"datasync:{action}", resource,
                              {"aws:RequestedRegion": REGION, **context})
        if iam.allowed(iam.check_policy(statements), request):
            got.add(deployment)
    assert got == allowed_in


def test_tasks_ferry_creates_are_followed_to_their_end_with_an_allow_list_set(
        ferry: LocalFerry, world: World, reports: Any) -> None:
    """Deployed with DataSyncTaskArns listing one task and ManageDataSyncTasks on, against the
    emulator holding each function to its grants: a job on the listed task and a job defining
    its own task both run to their end (started, tagged, described, reported); a job on a task
    not listed is refused by DataSync itself (IAM), reported "could not start"."""
    ds = ferry.client("datasync")
    batch = unique("allow-list")
    src, dst = (ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}",
                                      Subdirectory=f"/allow/{batch}",
                                      S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
                for bucket in (world.data_bucket, world.archive_bucket))
    ferry.client("s3").put_object(Bucket=world.data_bucket, Key=f"allow/{batch}/a.csv", Body=b"a")
    unlisted = ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst,
                              Name=unique("unlisted"))["TaskArn"]
    ferry.grant({**DEPLOY_PARAMETERS, "DataSyncTaskArns": world.route_task_arn,
                 "ManageDataSyncTasks": "true"})
    defined = {"name": unique("allow-defined"), "source_location_arn": src,
               "destination_location_arn": dst}
    outcomes = {}
    for what, job in [("listed", {"task_arn": world.route_task_arn}),
                      ("defined", {"task": defined}), ("unlisted", {"task_arn": unlisted})]:
        submitted = ferry.submit({"job": {"name": f"allow-{what}", "kind": "datasync", **job},
                                  "id": f"{batch}-{what}"})
        assert submitted.ok, submitted.error_message
        job_id = submitted.payload["job_id"]
        lane = submitted.payload["lane"]
        ferry.settle(lane, jobs=len(ferry.lane_jobs(lane)))
        outcomes[what] = report_of(reports, job_id)
    assert outcomes["listed"]["outcome"] == "succeeded", outcomes["listed"]
    assert outcomes["defined"]["outcome"] == "succeeded", outcomes["defined"]
    assert outcomes["defined"]["counts"]["files_transferred"] == 1
    assert outcomes["unlisted"]["outcome"] == "could_not_start", outcomes["unlisted"]
    assert "AccessDeniedException" in outcomes["unlisted"]["reason"], outcomes["unlisted"]
    denied = ferry.take_denied()
    assert {(d["action"], d["resource"]) for d in denied} == {
        ("datasync:StartTaskExecution", unlisted)}, denied


#: IAM quotas: "the total aggregate policy size (the sum size of all inline policies) per
#: entity cannot exceed ... Role policy size 10,240 characters" (whitespace not counted).
ROLE_INLINE_POLICY_CHARS = 10_240


def inline_policy_chars(binary: str, parameters: dict[str, str]) -> int:
    """The characters of every inline policy SAM gives the function's role, as CloudFormation
    would render them for `parameters`; a resource's own ARN (the lane table, the state
    machine) counted as 100 characters, more than any of them takes."""
    tpl = template.load()
    evaluator = template.Evaluator(tpl, parameters)

    def rendered(node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in map(rendered, node) if v is not template.NO_VALUE]
        if isinstance(node, dict) and set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return rendered(yes if evaluator.condition(name) else no)
        if isinstance(node, dict) and len(node) == 1 and next(iter(node)).startswith(
                ("Ref", "Fn::")):
            try:
                return evaluator.value(node)
            except KeyError:
                return "x" * 100
        if isinstance(node, dict):
            return {k: rendered(v) for k, v in node.items()}
        return node

    policies = rendered(template.functions(tpl)[binary]["Properties"]["Policies"])
    return len(json.dumps(policies, separators=(",", ":")).replace(" ", ""))


@pytest.mark.parametrize(("manages", "per_task"), [("true", 70), ("false", 152)])
def test_forty_listed_tasks_and_file_systems_fit_the_roles_policy_size(manages: str,
                                                                       per_task: int) -> None:
    """start-task's role names each listed DataSync task in its start grant and, without
    ManageDataSyncTasks, in its executions' tag grant; each file system once. With 40 of each
    (and every option on) every role's inline policies must stay within IAM's 10,240
    characters, or the stack fails to deploy (45 of each do not: docs/deploy.md says 40)."""
    task = f"arn:aws:datasync:{REGION}:{ACCOUNT}:task/task-" + "{:017x}"
    parameters = {
        "FileSystemIds": ",".join(f"fs-{i:017x}" for i in range(40)),
        "DataSyncTaskArns": ",".join(task.format(i) for i in range(40)),
        "DataSyncRoleArns": ",".join(f"arn:aws:iam::{ACCOUNT}:role/ferry-datasync-{i:02d}"
                                     for i in range(5)),
        "ManageDataSyncTasks": manages,
    }
    sizes = {name: inline_policy_chars(name, parameters) for name in template.functions(
        template.load())}
    assert max(sizes.values()) <= ROLE_INLINE_POLICY_CHARS, sizes
    # The walk sees the lists: each listed task costs start-task what the grants repeat.
    fewer = inline_policy_chars("ferry-start-task",
                                {**parameters, "DataSyncTaskArns": task.format(0)})
    assert sizes["ferry-start-task"] - fewer == 39 * per_task, (sizes, fewer)


# ----------------------------------------------------------------------- the signature check

def signed(body: bytes, *, service: str = "lambda", region: str = REGION,
           key: tuple[str, str] = ("ASIALOCALALICE", "alice-secret")) -> dict[str, str]:
    """Headers of a POST to the URL, signed now by botocore (not by Ferry's signer)."""
    request = AWSRequest(method="POST", url="http://127.0.0.1:8080/", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*key), service, region).add_auth(request)
    # botocore signs the Host header without adding it: the HTTP client sends it.
    return {**dict(request.headers.items()), "Host": "127.0.0.1:8080"}


def check(headers: dict[str, str], body: bytes,
          now: dt.datetime | None = None) -> function_url.Identity | None:
    found = function_url.verify("POST", "/", "", headers, body, function_url.IDENTITIES,
                                now or dt.datetime.now(dt.UTC))
    return found[1] if found else None


def test_a_botocore_signed_request_is_verified_and_any_change_is_refused() -> None:
    body = b'{"whoami": {}}'
    caller = check(signed(body), body)
    assert caller is not None and caller.arn == ALICE
    assert check(signed(body), b'{"whoami": {"x": 1}}') is None, "another body"
    assert check(signed(body, service="execute-api"), body) is None, "another service"
    assert check(signed(body, region="eu-west-1"), body) is None, "another region"
    assert check(signed(body, key=("ASIALOCALALICE", "guess")), body) is None, "another secret"
    assert check(signed(body, key=("AKIANOBODY", "x")), body) is None, "an unknown key"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    assert check(signed(body), body, now=later) is None, "16 minutes old"
    assert check({"Content-Type": "application/json"}, body) is None, "unsigned"
