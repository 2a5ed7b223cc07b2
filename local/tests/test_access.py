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

from ferry_local import function_url, paths, template
from ferry_local.emulator_process import ACCOUNT, REGION
from ferry_local.ferry import LocalFerry, lane_of_fs, unique

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


def _statements(node: Any) -> list[dict[str, Any]]:
    """Every statement (a mapping with a Sid) under a function's Policies, through !If."""
    if isinstance(node, list):
        return [st for item in node for st in _statements(item)]
    if isinstance(node, dict):
        if "Sid" in node:
            return [node]
        return [st for value in node.values() for st in _statements(value)]
    return []


@pytest.mark.parametrize("manages", ["true", "false"])
def test_tasks_ferry_creates_are_followed_with_an_allow_list_set(manages: str) -> None:
    """With DataSyncTaskArns listing existing tasks and ManageDataSyncTasks on, the executions of
    the tasks Ferry creates (ARNs unknown in advance) must be taggable, describable and
    cancellable: every execution grant covers the account's executions. Off, the list holds."""
    tpl = template.load()
    task = f"arn:aws:datasync:{REGION}:{ACCOUNT}:task/task-0a1b2c3d4e5f60718"
    evaluator = template.Evaluator(tpl, {"DataSyncTaskArns": task,
                                         "ManageDataSyncTasks": manages})
    account_wide = f"arn:aws:datasync:{REGION}:{ACCOUNT}:task/*/execution/*"
    grants = {}
    for name, function in template.functions(tpl).items():
        for statement in _statements(function["Properties"].get("Policies", [])):
            actions = statement["Action"] if isinstance(statement["Action"], list) \
                else [statement["Action"]]
            if {"datasync:DescribeTaskExecution", "datasync:CancelTaskExecution",
                    "datasync:TagResource"} & set(actions) and "execution" in json.dumps(
                        statement["Resource"]):
                grants[(name, statement["Sid"])] = evaluator.value(statement["Resource"])
    assert {name for name, _ in grants} == {"ferry-start-task", "ferry-task-status",
                                            "ferry-cancel-task", "ferry-datasync-event"}
    for where, resource in grants.items():
        if manages == "true":
            assert resource == account_wide, where
        else:
            # The list's executions only (!Split is left for CloudFormation).
            assert "Fn::Split" in resource and task in json.dumps(resource), where


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
