"""The `ferry` CLI through its real binary, against the emulator and the running functions and
runners (issue 16): submit (with --wait), status --json while a run is in flight, cancel of a
pending job (its report at once), of a running FSx task and of a DataSync run (reports naming
the caller and the reason), cancel of an ended job, unknown ids, the deployment found from a
stack's outputs.

Offline behaviour (help, validate, usage errors, an unreachable endpoint) is tested in
cli/tests/cli.rs.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import time
import urllib.parse
from typing import Any, Callable

import pytest

from conftest import World, failing_datasync_job, report_of, reports_of_job
from ferry_local import paths, processes
from ferry_local.ferry import Inbox, LocalFerry, lane_of_fs, lane_of_task, unique

#: moto's answer to GetCallerIdentity for any credentials.
CALLER = "arn:aws:sts::123456789012:user/moto"


def ferry_cli(ferry: LocalFerry, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = paths.cli()
    if not binary.is_file():
        pytest.fail(f"{binary} is not built (cargo build -p ferry-cli, or cargo test --workspace)")
    return subprocess.run([str(binary), *args], env=ferry.cli_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def job_file(tmp_path: pathlib.Path, job: dict[str, Any]) -> str:
    path = tmp_path / f"{job['name']}.json"
    path.write_text(json.dumps(job))
    return str(path)


def submit_json(ferry: LocalFerry, file: str, *extra: str) -> dict[str, Any]:
    out = ferry_cli(ferry, "submit", file, "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[0])


def lane_status(ferry: LocalFerry, lane: str) -> dict[str, Any]:
    out = ferry_cli(ferry, "status", lane, "--json")
    assert out.returncode == 0, out.stderr
    [status] = json.loads(out.stdout)["lanes"]
    return status


def submit_started(ferry: LocalFerry, tmp_path: pathlib.Path, lane: str,
                   job: dict[str, Any], lifecycle: str | None = None) -> str:
    """Submits `job` with the CLI and waits for its run's task to start (and to reach
    `lifecycle`, when given: a held FSx task is PENDING for a step, then EXECUTING); returns
    the job id."""
    job_id = submit_json(ferry, job_file(tmp_path, job))["job_id"]

    def started() -> bool:
        run = lane_status(ferry, lane)["run"] or {}
        return bool(run.get("task")) and lifecycle in (None, run.get("lifecycle"))

    processes.wait_for(started, 30, interval=0.3,
                       what=f"the task of {job['name']} started ({lifecycle or 'any lifecycle'})")
    return job_id


def test_submit_wait_follows_a_job_to_its_end(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n"})
    file = job_file(tmp_path, {"name": unique("cli-export"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": ["results"]})
    out = ferry_cli(ferry, "submit", file, "--id", "nightly-1", "--wait", "--interval", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("job job-") and f"queued on fsx:{fs}; runner " in lines[0], lines
    assert lines[-1].startswith("succeeded (run run-"), lines
    job = lines[0].split()[1]
    assert report_of(reports, job)["outcome"] == "succeeded"
    again = ferry_cli(ferry, "submit", file, "--id", "nightly-1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"job {job} was submitted before (same id): nothing added")
    assert len(ferry.fsx_tasks(fs)) == 1


def test_a_failed_job_makes_submit_wait_exit_1(
        world: World, ferry: LocalFerry, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"out/a.nc": "a\n"})
    ferry.ctl.fsx_fail(fs, files=[{"path": "out/a.nc", "error_code": "S3AccessDenied"}])
    file = job_file(tmp_path, {"name": unique("cli-fails"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": ["out"]})
    out = ferry_cli(ferry, "submit", file, "--wait", "--interval", "1", "--json")
    assert out.returncode == 1, (out.stdout, out.stderr)
    states = [json.loads(line)["state"] for line in out.stdout.splitlines()[1:]]
    assert states[-1] == "failed", states


def test_cancel_from_the_cli_pending_and_running_with_status_in_between(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n"})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    running = submit_started(ferry, tmp_path, lane, {
        "name": unique("cli-running"), "kind": "fsx_export", "file_system_id": fs}, "EXECUTING")
    pending = submit_json(ferry, job_file(tmp_path, {
        "name": unique("cli-pending"), "kind": "fsx_import", "file_system_id": fs}))["job_id"]

    status = lane_status(ferry, lane)
    assert status["lane"] == lane and status["waiting"] == 1, status
    assert status["oldest_waiting_seconds"] >= 0
    assert status["runner"]["alive"] is True
    run = status["run"]
    assert (run["kind"], run["jobs"], run["state"]) == ("fsx_export", 1, "started"), run
    assert run["task"]["file_system_id"] == fs and run["lifecycle"] == "EXECUTING", run
    text = ferry_cli(ferry, "status")
    assert text.returncode == 0 and lane in text.stdout and "EXECUTING" in text.stdout
    # A 100-column terminal holds it (fsx lanes); --wide has every column and whole ids.
    assert all(len(line) <= 100 for line in text.stdout.splitlines()), text.stdout
    assert run["id"][:12] in text.stdout and run["id"] not in text.stdout
    wide = ferry_cli(ferry, "status", "--wide")
    assert wide.returncode == 0 and run["id"] in wide.stdout and "TASK" in wide.stdout
    assert status["runner"]["owner"] in wide.stdout

    out = ferry_cli(ferry, "cancel", pending, "--reason", "wrong folder")
    assert (out.returncode, out.stdout.strip()) == (0, (
        f"job {pending} was pending: canceled, it will never start\n"
        "its canceled report goes to the job's topic now")), out.stderr
    # The report comes at once, while the held export still runs.
    report = report_of(reports, pending)
    assert report["outcome"] == "canceled"
    assert report["reason"].startswith(f"cancelled at the request of {CALLER} while it waited")
    assert report["reason"].endswith(": wrong folder; it never ran")
    assert ferry.lane_jobs(lane)[running]["state"] == "running"
    again = ferry_cli(ferry, "cancel", pending)
    assert (again.returncode, again.stdout.strip()) == (
        0, f"job {pending} already ended (canceled): nothing to cancel")
    out = ferry_cli(ferry, "cancel", running, "--reason", "no longer needed")
    assert out.returncode == 0, out.stderr
    assert f"cancel requested by {CALLER}" in out.stdout
    jobs = ferry.settle(lane, jobs=2)
    assert (jobs[running]["state"], jobs[pending]["state"]) == ("canceled", "canceled")
    [task] = ferry.fsx_tasks(fs)
    assert (task["Type"], task["Lifecycle"]) == ("EXPORT_TO_REPOSITORY", "CANCELED")
    report = report_of(reports, running)
    assert report["outcome"] == "canceled"
    assert report["reason"] == f"cancelled at the request of {CALLER}: no longer needed"

    ended = ferry_cli(ferry, "cancel", running)
    assert (ended.returncode, ended.stdout.strip()) == (
        0, f"job {running} already ended (canceled): nothing to cancel")
    assert len(reports_of_job(reports, pending, 2, 5)) == 2, "one report for the pending job"
    ferry.ctl.release(file_system_id=fs)


def test_cancel_of_a_datasync_run_by_its_run_id(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path) -> None:
    task_arn = ferry.datasync_task(unique("cli-ds"), world.data_bucket, "/cli",
                                   world.archive_bucket, "/cli")
    lane = lane_of_task(task_arn)
    ferry.ctl.hold(task_arn=task_arn)
    job = submit_started(ferry, tmp_path, lane, {
        "name": unique("cli-sync"), "kind": "datasync", "task_arn": task_arn})
    run = lane_status(ferry, lane)["run"]["id"]
    out = ferry_cli(ferry, "cancel", run, "--reason", "window closed")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"run {run}: cancel requested by {CALLER}")
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "canceled"
    [execution] = ferry.datasync_executions(task_arn)
    assert execution["Status"] == "ERROR"
    report = report_of(reports, job)
    assert report["outcome"] == "canceled"
    assert report["reason"] == f"cancelled at the request of {CALLER}: window closed"
    ferry.ctl.release(task_arn=task_arn)


def test_unknown_ids_and_bad_input_are_one_line_and_exit_1(
        world: World, ferry: LocalFerry) -> None:
    out = ferry_cli(ferry, "cancel", "job-" + "0" * 56)
    assert out.returncode == 1
    assert out.stderr.startswith("ferry: not found: job job-000") and out.stderr.count("\n") == 1
    out = ferry_cli(ferry, "cancel", "run-nothing")
    assert (out.returncode, out.stderr.strip()) == (
        1, "ferry: not found: run run-nothing is in no lane of this table")
    out = ferry_cli(ferry, "cancel", "nightly")
    assert out.returncode == 1 and out.stderr.startswith("ferry: nightly: not a job or run id")
    out = ferry_cli(ferry, "status", "fsx:nope")
    assert out.returncode == 1 and out.stderr.startswith("ferry: LANE: ")


def test_stack_outputs_find_the_deployment(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    """`--stack NAME` reads the stack's LaneTableName and StateMachineArn outputs
    (DescribeStacks); a flag wins over it, and a missing stack or output is one line."""
    _, fs = file_system(files={"results/a.nc": "a\n"})
    cloudformation = ferry.client("cloudformation")
    stack = unique("ferry-cli-stack")
    # moto keeps a template's literal outputs; the one resource is there because a template
    # needs one (moto does not create it).
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {"LaneTableName": {"Value": ferry.cli_env()["FERRY_LANE_TABLE"]},
                            "StateMachineArn": {"Value": ferry.state_machine_arn}}}
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    bare = unique("not-ferry")
    cloudformation.create_stack(StackName=bare, TemplateBody=json.dumps(
        {"Resources": template["Resources"]}))
    env = {k: v for k, v in ferry.cli_env().items()
           if k not in ("FERRY_LANE_TABLE", "FERRY_STATE_MACHINE_ARN")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(paths.cli()), *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    job = job_file(tmp_path, {"name": unique("cli-stack"), "kind": "fsx_export",
                              "file_system_id": fs})
    out = cli("submit", job, "--stack", stack, "--wait", "--json")
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout.splitlines()[0])["job_id"]
    assert report_of(reports, job_id)["outcome"] == "succeeded"
    out = cli("status", lane_of_fs(fs), "--json", "--stack", stack)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lanes"][0]["lane"] == lane_of_fs(fs)
    with_env = dict(env, FERRY_STACK=stack)
    out = subprocess.run([str(paths.cli()), "history", "--lane", lane_of_fs(fs), "--json"],
                         env=with_env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and len(json.loads(out.stdout)["runs"]) == 1, out.stderr

    # --table wins over the stack's output.
    out = cli("status", "--stack", stack, "--table", "no-such-table")
    assert out.returncode == 1 and "no-such-table" not in out.stdout, out
    assert out.stderr.count("\n") == 1, out.stderr
    out = cli("status", "--stack", "ferry-nowhere")
    assert (out.returncode, out.stderr.strip()) == (1, (
        "ferry: stack ferry-nowhere not found in us-east-1: check --stack (FERRY_STACK) "
        "and AWS_REGION")), out.stderr
    out = cli("status", "--stack", bare)
    assert out.returncode == 1
    assert out.stderr.startswith(f"ferry: stack {bare} (CREATE_COMPLETE) has no LaneTableName "
                                 "output: is it a Ferry stack (template.yaml)?"), out.stderr


def test_watch_follows_a_run_then_history_and_tasks_show_it(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    bucket, fs = file_system(files={"results/a.nc": "a\n", "results/b.nc": "b\n"})
    lane = lane_of_fs(fs)
    # A task Ferry did not start, finished before Ferry's: `tasks` lists it, not as Ferry's.
    foreign = ferry.client("fsx").create_data_repository_task(
        FileSystemId=fs, Type="EXPORT_TO_REPOSITORY", Paths=["results"],
        Report={"Enabled": False})["DataRepositoryTask"]["TaskId"]
    processes.wait_for(lambda: ferry.fsx_tasks(fs)[0]["Lifecycle"] == "SUCCEEDED", 30,
                       interval=0.2, what="the foreign task done")
    ferry.ctl.hold(file_system_id=fs)
    name = unique("cli-watched")
    job = submit_started(ferry, tmp_path, lane, {"name": name, "kind": "fsx_export",
                                                 "file_system_id": fs, "paths": ["results"]},
                         "EXECUTING")
    binary = paths.cli()
    watch = subprocess.Popen([str(binary), "watch", job, "--interval", "1"], env=ferry.cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ferry.ctl.release(file_system_id=fs)
        out, err = watch.communicate(timeout=90)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert any(line.startswith("task-") and line.endswith(" EXECUTING") for line in lines), out
    assert f"Ferry job {name} (fsx_export) succeeded." in out
    report = report_of(reports, job)
    assert report["_text"].strip() in out, "the report text as notify published it"

    history = ferry_cli(ferry, "history", "--lane", lane, "--json")
    assert history.returncode == 0, history.stderr
    [run] = json.loads(history.stdout)["runs"]
    assert (run["run"], run["outcome"], run["jobs"], run["job"]) == (
        report["run"], "succeeded", 1, name)
    assert "text" not in run
    text = ferry_cli(ferry, "history", "--since", "1h")
    assert text.returncode == 0 and report["run"] in text.stdout and "SUCCEEDED" in text.stdout

    tasks = ferry_cli(ferry, "tasks", fs, "--json")
    assert tasks.returncode == 0, tasks.stderr
    listed = {t["id"]: t for t in json.loads(tasks.stdout)["tasks"]}
    assert listed[foreign]["ferry"] is False
    assert listed[report["task_id"]]["ferry"] is True
    assert {t["lifecycle"] for t in listed.values()} == {"SUCCEEDED"}
    none = ferry_cli(ferry, "tasks", fs, "--lifecycle", "EXECUTING")
    assert (none.returncode, none.stdout.strip()) == (0, "no tasks")


def test_tasks_lists_a_datasync_task_s_executions(
        world: World, ferry: LocalFerry, tmp_path: pathlib.Path) -> None:
    task_arn = ferry.datasync_task(unique("cli-list"), world.data_bucket, "/list",
                                   world.archive_bucket, "/list")
    lane = lane_of_task(task_arn)
    job = submit_json(ferry, job_file(tmp_path, {
        "name": unique("cli-list"), "kind": "datasync", "task_arn": task_arn}))["job_id"]
    assert ferry.settle(lane, jobs=1)[job]["state"] == "succeeded"
    out = ferry_cli(ferry, "tasks", task_arn, "--lifecycle", "SUCCESS", "--json")
    assert out.returncode == 0, out.stderr
    [execution] = json.loads(out.stdout)["tasks"]
    assert execution["id"].startswith(task_arn + "/execution/exec-")
    assert (execution["lifecycle"], execution["ferry"]) == ("SUCCESS", True)


def test_notifications_send_exactly_the_routes_uploads_and_keep_the_buckets_own(
        ferry: LocalFerry, world: World, tmp_path: pathlib.Path) -> None:
    # Issue 31, item 7: a whole-bucket notification sent Ferry every object created, its own
    # manifests and reports included. One filtered configuration per route, merged.
    s3, sqs = ferry.client("s3"), ferry.client("sqs")
    bucket = ferry.bucket(unique("ferry-notify"))
    routes = [{"name": "h5", "bucket": bucket, "prefix": "in/", "suffixes": [".h5"],
               "job": {"name": "i", "kind": "fsx_import", "file_system_id": world.route_fs}}]
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps(routes))
    url, arn = ferry.queue(unique("ferry-notify-q"))
    _, other_arn = ferry.queue(unique("ferry-other-q"))
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "deletions", "QueueArn": other_arn,
                                 "Events": ["s3:ObjectRemoved:*"]}]})
    current = tmp_path / "current.json"
    current.write_text(json.dumps(s3.get_bucket_notification_configuration(Bucket=bucket),
                                  default=str))

    out = ferry_cli(ferry, "notifications", "--routes", str(routes_file), "--queue-arn", arn,
                    "--existing", str(current))
    assert out.returncode == 0, out.stderr
    assert f"--bucket {bucket}" in out.stderr
    configuration = json.loads(out.stdout)
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration=configuration)
    kept = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert sorted(c["Id"] for c in kept) == ["deletions", "ferry-h5"]

    for key in ("in/a.h5", "in/b.csv", "out/c.h5"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    keys = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in got.get("Messages", []):
            body = json.loads(message["Body"])
            # Keys arrive URL-encoded, as S3 sends them.
            keys += [urllib.parse.unquote_plus(r["s3"]["object"]["key"])
                     for r in body.get("Records", [])]
        if keys:
            break
        time.sleep(0.1)
    assert keys == ["in/a.h5"], "only the route's uploads reach the queue"

    # A configuration of the bucket's own that S3 would find overlapping is refused by name.
    current.write_text(json.dumps({"QueueConfigurations": [
        {"Id": "everything", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:Put"]}]}))
    out = ferry_cli(ferry, "notifications", "--routes", str(routes_file), "--queue-arn", arn,
                    "--existing", str(current))
    assert out.returncode == 1 and "everything (QueueConfigurations) overlaps ferry-h5" in out.stderr


def test_drain_waits_out_the_lane_s_work_times_out_with_3_and_exits_0_once_exported(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n", "results/b.nc": "b\n"})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    running = submit_started(ferry, tmp_path, lane, {
        "name": unique("cli-before-drain"), "kind": "fsx_import", "file_system_id": fs},
        "EXECUTING")

    # The lane is busy with a held import: the drain queues its export and gives up in time.
    out = ferry_cli(ferry, "drain", fs, "results", "--id", "teardown-1", "--timeout", "3",
                    "--interval", "1")
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert out.stdout.splitlines()[-1].startswith("not drained: gave up after 3 s; job job-")
    assert lane_status(ferry, lane)["waiting"] == 1

    # Run again with the same id (a retried teardown script): it follows the same export.
    again = subprocess.Popen([str(paths.cli()), "drain", fs, "results", "--id", "teardown-1",
                              "--interval", "1", "--json"], env=ferry.cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        assert again.poll() is None, again.communicate()
        ferry.ctl.release(file_system_id=fs)
        stdout, stderr = again.communicate(timeout=120)
    finally:
        again.kill()
    assert again.returncode == 0, (stdout, stderr)
    drained = json.loads(stdout.splitlines()[-1])
    assert (drained["drained"], drained["verdict"], drained["lane"]) == (True, "drained", lane)
    assert drained["report"]["outcome"] == "succeeded", drained
    assert drained["report"]["counts"]["failed"] == 0, drained
    assert report_of(reports, running)["outcome"] == "succeeded"
    status = lane_status(ferry, lane)
    assert status["waiting"] == 0 and status["run"] is None, status
    exports = [t for t in ferry.fsx_tasks(fs) if t["Type"] == "EXPORT_TO_REPOSITORY"]
    assert len(exports) == 1 and exports[0]["Paths"] == ["results"], exports


def test_drain_with_failed_files_exits_1_and_prints_which_failed(
        world: World, ferry: LocalFerry, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    bucket, fs = file_system(files={"out/a.nc": "a\n", "out/b.nc": "b\n"})
    ferry.ctl.fsx_fail(fs, files=[{"path": "out/b.nc", "error_code": "S3AccessDenied"}])
    out = ferry_cli(ferry, "drain", fs, "--report", f"s3://{bucket}/ferry-reports",
                    "--interval", "1")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "out/b.nc (S3AccessDenied)" in out.stdout, out.stdout
    assert out.stdout.splitlines()[-1] == f"not drained: the export of {fs} failed"


def test_a_job_cancelled_while_pending_ends_drain_and_watch_with_one_json_document(
        world: World, ferry: LocalFerry, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n"})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    submit_started(ferry, tmp_path, lane, {
        "name": unique("cli-holds-the-lane"), "kind": "fsx_import", "file_system_id": fs},
        "EXECUTING")
    drain = subprocess.Popen([str(paths.cli()), "drain", fs, "--interval", "1", "--json"],
                             env=ferry.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        def drain_job() -> str | None:
            return next((job for job, record in ferry.lane_jobs(lane).items()
                         if record["job"]["spec"]["name"] == f"drain-{fs}"), None)

        processes.wait_for(drain_job, 30, interval=0.3, what="the drain's export queued")
        job = drain_job()
        assert job is not None
        out = ferry_cli(ferry, "cancel", job, "--reason", "keeping the cluster")
        assert out.returncode == 0, out.stderr
        stdout, stderr = drain.communicate(timeout=60)
    finally:
        drain.kill()
        ferry.ctl.release(file_system_id=fs)
    # One JSON document, nothing else on standard output.
    assert drain.returncode == 1, (stdout, stderr)
    [line] = stdout.splitlines()
    drained = json.loads(line)
    assert (drained["drained"], drained["verdict"], drained["job_id"]) == (False, "not_run", job)
    watched = ferry_cli(ferry, "watch", job, "--json", "--interval", "1")
    assert watched.returncode == 1, watched.stderr
    assert [json.loads(l) for l in watched.stdout.splitlines()] == [
        {"job": job, "state": "canceled", "run": None}]


# ------------------------------------------------ links to S3: associations (issue 30)


def linked_file_system(ferry: LocalFerry, bucket: str) -> tuple[str, str, str]:
    """A file system linked by two associations: /ns1/ ↔ s3://bucket/ns1/ (automatic import)
    and /raw/ ↔ s3://bucket/raw/ (automatic export). Returns (fs, dra of ns1, dra of raw)."""
    fsx = ferry.client("fsx")
    fs = fsx.create_file_system(
        FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=["subnet-0123456789abcdef0"],
        LustreConfiguration={"DeploymentType": "PERSISTENT_2"})["FileSystem"]["FileSystemId"]
    ids = [fsx.create_data_repository_association(
        FileSystemId=fs, FileSystemPath=path, DataRepositoryPath=f"s3://{bucket}{path}",
        S3=s3)["Association"]["AssociationId"]
        for path, s3 in [("/ns1/", {"AutoImportPolicy": {"Events": ["NEW", "CHANGED"]}}),
                         ("/raw/", {"AutoExportPolicy": {"Events": ["NEW"]}})]]
    return fs, ids[0], ids[1]


def test_a_job_outside_its_associations_is_refused_before_it_is_queued(
        ferry: LocalFerry, world: World, tmp_path: pathlib.Path) -> None:
    bucket = world.data_bucket
    fs, ns1, raw = linked_file_system(ferry, bucket)
    misrouted = job_file(tmp_path, {"name": "misrouted", "kind": "fsx_import",
                                    "file_system_id": fs, "paths": [f"s3://{bucket}/ns2/x"]})
    # validate --associations names the path, the rule and every association.
    out = ferry_cli(ferry, "validate", "--associations", misrouted)
    assert out.returncode == 1, out
    assert f"job.paths[0]: s3://{bucket}/ns2/x is in no S3 path linked to {fs}" in out.stdout
    assert f"{ns1} /ns1/ ↔ s3://{bucket}/ns1/ (AVAILABLE, automatic import NEW,CHANGED)" \
        in out.stdout, out.stdout
    assert f"{raw} /raw/ ↔ s3://{bucket}/raw/ (AVAILABLE, automatic export NEW)" in out.stdout
    # Offline, the same file is valid: only the associations refuse it.
    assert ferry_cli(ferry, "validate", misrouted).returncode == 0
    # An export where FSx exports automatically is refused too.
    clash = job_file(tmp_path, {"name": "clash", "kind": "fsx_export", "file_system_id": fs,
                                "paths": ["raw/day-1"]})
    out = ferry_cli(ferry, "validate", "--associations", clash)
    assert out.returncode == 1 and f"reaches {raw} which exports automatically" in out.stdout
    # submit refuses it before anything is queued.
    out = ferry_cli(ferry, "submit", misrouted)
    assert out.returncode != 0
    assert "refused before queueing, its task would fail" in out.stderr, out.stderr
    assert ferry.lane_jobs(lane_of_fs(fs)) == {}
    # A job inside them passes and is queued.
    good = job_file(tmp_path, {"name": "good", "kind": "fsx_release", "file_system_id": fs,
                               "paths": ["ns1/old"]})
    out = ferry_cli(ferry, "validate", "--associations", good)
    assert out.returncode == 0 and "valid job" in out.stdout, out
    submitted = submit_json(ferry, good)
    assert submitted["lane"] == lane_of_fs(fs)
    ferry.settle(lane_of_fs(fs), jobs=1)
    # Its task ran on ns1's path: `tasks --association` keeps one association's tasks.
    listed = {}
    for dra in (ns1, raw):
        out = ferry_cli(ferry, "tasks", fs, "--association", dra, "--json")
        assert out.returncode == 0, out.stderr
        listed[dra] = [t["kind"] for t in json.loads(out.stdout)["tasks"]]
    assert listed == {ns1: ["RELEASE_DATA_FROM_FILESYSTEM"], raw: []}, listed
    out = ferry_cli(ferry, "tasks", fs, "--association", "nope")
    assert out.returncode != 0 and "--association: expected an association id" in out.stderr


def test_routes_outside_their_associations_are_named_by_validate_and_held_back_by_plan(
        ferry: LocalFerry, world: World, tmp_path: pathlib.Path) -> None:
    bucket = world.data_bucket
    fs, ns1, _ = linked_file_system(ferry, bucket)
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps([
        {"name": "ns1-import", "bucket": bucket, "prefix": "ns1/incoming/",
         "job": {"name": "ns1-import", "kind": "fsx_import", "file_system_id": fs}},
        {"name": "ns2-import", "bucket": bucket, "prefix": "ns2/",
         "job": {"name": "ns2-import", "kind": "fsx_import", "file_system_id": fs}}]))
    # Offline the routes are valid; against the associations the ns2 route is named.
    assert ferry_cli(ferry, "validate", str(routes)).returncode == 0
    out = ferry_cli(ferry, "validate", "--associations", str(routes))
    assert out.returncode == 1, out
    assert (f"route ns2-import: job.paths[0]: s3://{bucket}/ns2 is in no S3 path linked to {fs}"
            in out.stdout), out.stdout
    assert "route ns1-import" not in out.stdout, out.stdout
    # plan --associations holds the ns2 uploads back, as s3-trigger would; ns1's are planned.
    keys = tmp_path / "keys.txt"
    keys.write_text(f"s3://{bucket}/ns1/incoming/a.h5\ns3://{bucket}/ns2/b.h5\n"
                    f"s3://{bucket}/ns2/c.h5\n")
    offline = json.loads(ferry_cli(ferry, "plan", "--routes", str(routes), "--keys", str(keys),
                                   "--json").stdout)
    assert [j["route"] for j in offline["jobs"]] == ["ns1-import", "ns2-import"]
    out = ferry_cli(ferry, "plan", "--routes", str(routes), "--keys", str(keys),
                    "--associations", "--json")
    assert out.returncode == 0, out.stderr
    checked = json.loads(out.stdout)
    assert [j["route"] for j in checked["jobs"]] == ["ns1-import"]
    [held] = checked["refused"]
    assert held.startswith("2 objects held back: route ns2-import: its tasks would fail: "), held
    assert ns1 in held


def test_a_failed_read_of_the_associations_lets_a_good_job_through_with_a_warning(
        ferry: LocalFerry, world: World, tmp_path: pathlib.Path) -> None:
    fs = ferry.file_system(world.data_bucket)
    ferry.ctl.throttle("fsx", "DescribeFileSystems", probability=1.0, count=20)
    job = job_file(tmp_path, {"name": "unread", "kind": "fsx_release", "file_system_id": fs,
                              "paths": ["/"]})
    out = ferry_cli(ferry, "submit", job, "--json")
    assert out.returncode == 0, out.stderr
    assert f"ferry: warning: the data repository links of {fs} could not be read" in out.stderr
    assert json.loads(out.stdout.splitlines()[0])["lane"] == lane_of_fs(fs)
    ferry.ctl.clear_faults()
    ferry.settle(lane_of_fs(fs), jobs=1)


def test_init_writes_routes_and_schedules_that_validate_and_skips_what_fsx_does_itself(
        ferry: LocalFerry, world: World, tmp_path: pathlib.Path) -> None:
    bucket = world.data_bucket
    fs, ns1, raw = linked_file_system(ferry, bucket)
    out = tmp_path / "init"
    done = ferry_cli(ferry, "init", fs, "--out", str(out), "--report",
                     f"s3://{bucket}/ns1/ferry-reports")
    assert done.returncode == 0, done.stderr
    # /ns1/ imports automatically: no route; /raw/ does not: one route, for its S3 path.
    routes = json.loads((out / "routes.json").read_text())
    assert [(r["name"], r["bucket"], r["prefix"], r["job"]["kind"]) for r in routes] == [
        ("import-raw", bucket, "raw/", "fsx_import")]
    # /raw/ exports automatically: no schedule; /ns1/ does not: one export of its directory.
    schedules = sorted(p.name for p in (out / "schedules").iterdir())
    assert schedules == ["export-ns1.json"]
    event = json.loads((out / "schedules" / "export-ns1.json").read_text())
    assert event["job"]["paths"] == ["ns1"] and event["job"]["file_system_id"] == fs
    assert f"{ns1} /ns1/" in done.stdout and "FSx imports NEW, CHANGED objects itself" \
        in done.stdout, done.stdout
    assert f"{raw} /raw/" in done.stdout and "FSx exports NEW files itself" in done.stdout
    # What it wrote validates, against the associations too.
    checked = ferry_cli(ferry, "validate", "--associations", str(out / "routes.json"),
                        str(out / "schedules" / "export-ns1.json"))
    assert checked.returncode == 0, checked.stdout
    # It never overwrites without --force.
    again = ferry_cli(ferry, "init", fs, "--out", str(out))
    assert again.returncode == 1 and "exists: give --force" in again.stderr, again.stderr
    assert ferry_cli(ferry, "init", fs, "--out", str(out), "--force").returncode == 0


def test_retry_failed_only_reruns_exactly_the_failed_files_and_its_report_names_the_run(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    files = {f"out/{name}": "x\n" for name in
             ("ok-1.nc", "@odd.nc", "comma,name.nc", "deep/big.nc", "ok-2.nc")}
    bucket, fs = file_system(files=files)
    failing = [{"path": "out/@odd.nc", "error_code": "FileSizeTooLarge"},
               {"path": "out/comma,name.nc", "error_code": "S3AccessDenied"},
               {"path": "out/deep/big.nc", "error_code": "FileSizeTooLarge"}]
    ferry.ctl.fsx_fail(fs, files=failing)
    report_path = f"s3://{bucket}/ferry-reports"
    file = job_file(tmp_path, {"name": unique("cli-retried"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": ["out"],
                               "report": {"enabled": True, "path": report_path}})
    out = ferry_cli(ferry, "submit", file, "--wait", "--interval", "1")
    assert out.returncode == 1, (out.stdout, out.stderr)
    first = report_of(reports, out.stdout.split()[1])
    run = first["run"]
    # The report gives the exact command.
    assert first["retry"] == f"ferry retry {run} --failed-only"
    assert f"Retry:        ferry retry {run} --failed-only\n" in first["_text"], first["_text"]

    # What it would queue: exactly the three files, the run's options, linked to the run.
    plan = ferry_cli(ferry, "retry", run, "--failed-only", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert sorted(planned["job"]["paths"]) == sorted(f["path"] for f in failing)
    assert planned["job"]["retry_of"] == run
    assert planned["job"]["report"]["path"] == report_path
    assert planned["failed_files"] == 3 and not planned["widened"]
    assert planned["submitted"] is None
    assert len(ferry.fsx_tasks(fs)) == 1, "a dry run submits nothing"

    retried = ferry_cli(ferry, "retry", run, "--failed-only", "--wait", "--interval", "1")
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    assert retried.stdout.startswith(f"retry of run {run}: 3 failed files from "), retried.stdout
    tasks = ferry.fsx_tasks(fs)
    assert len(tasks) == 2
    assert sorted(tasks[-1]["Paths"]) == sorted(f["path"] for f in failing)
    second = report_of(reports, retried.stdout.splitlines()[1].split()[1])
    assert second["outcome"] == "succeeded" and second["run"] != run
    assert [j["retry_of"] for j in second["jobs"]["listed"]] == [run]
    assert f"Retry of:     {run}\n" in second["_text"], second["_text"]
    assert "retry" not in second, "nothing failed: no retry command"

    # The same retry again is the same job: nothing added, no third task.
    again = ferry_cli(ferry, "retry", run, "--failed-only")
    assert again.returncode == 0, again.stderr
    assert "was submitted before (same id): nothing added" in again.stdout, again.stdout
    # The whole job, and what cannot be retried, said in one line.
    whole = ferry_cli(ferry, "retry", run, "--dry-run", "--json")
    assert json.loads(whole.stdout)["job"]["paths"] == ["out"]
    bad = ferry_cli(ferry, "retry", "nightly")
    assert bad.returncode == 1 and "nightly: not a run id" in bad.stderr, bad.stderr
    gone = ferry_cli(ferry, "retry", "run-does-not-exist", "--failed-only")
    assert gone.returncode == 1 and "not found: run run-does-not-exist" in gone.stderr
    assert len(ferry.fsx_tasks(fs)) == 2


def test_retry_failed_only_of_a_run_with_no_failure_report_says_so(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"out/a.nc": "a\n"})
    ferry.ctl.fsx_fail(fs, files=[{"path": "out/a.nc", "error_code": "S3AccessDenied"}])
    file = job_file(tmp_path, {"name": unique("cli-unreported"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": ["out"]})
    out = ferry_cli(ferry, "submit", file, "--wait", "--interval", "1")
    assert out.returncode == 1, (out.stdout, out.stderr)
    report = report_of(reports, out.stdout.split()[1])
    run = report["run"]
    # No failure report to read: the report offers the whole job again.
    assert report["retry"] == f"ferry retry {run}"
    retried = ferry_cli(ferry, "retry", run, "--failed-only")
    assert retried.returncode == 1
    assert retried.stderr.strip() == (
        f"ferry: run {run}: its task wrote no failure report to read (the job enables none): "
        f"rerun the whole job with `ferry retry {run}`"), retried.stderr
    assert len(ferry.fsx_tasks(fs)) == 1


def test_retry_failed_only_of_a_datasync_run_lists_its_failed_files_as_includes(
        world: World, ferry: LocalFerry, reports: Inbox, tmp_path: pathlib.Path,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, task_arn, job = failing_datasync_job(ferry, world, file_system, "cli-ds-failing")
    file = job_file(tmp_path, job)
    out = ferry_cli(ferry, "submit", file, "--wait", "--interval", "1")
    assert out.returncode == 1, (out.stdout, out.stderr)
    first = report_of(reports, out.stdout.split()[1])
    run = first["run"]
    failed = sorted(p["path"] for p in first["digest"]["paths"])
    assert len(failed) == 2 and first["retry"] == f"ferry retry {run} --failed-only"

    # The task's detailed reports, read with the CLI's credentials: one pattern per file.
    retried = ferry_cli(ferry, "retry", run, "--failed-only", "--wait", "--interval", "1",
                        "--json")
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    answer = json.loads(retried.stdout.splitlines()[0])
    assert answer["failed_files"] == 2 and not answer["widened"]
    assert answer["job"]["includes"] == ["/" + p.lstrip("/") for p in failed], answer["job"]
    assert all("/Detailed-Reports/" in s for s in answer["sources"]), answer["sources"]
    first_execution, second = ferry.datasync_executions(task_arn)
    assert second["Includes"] == [{"FilterType": "SIMPLE_PATTERN",
                                   "Value": "|".join(answer["job"]["includes"])}], second
    assert second["Status"] == "SUCCESS" and first_execution["Status"] == "ERROR"
