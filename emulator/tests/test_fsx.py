"""FSx data repository tasks against the running emulator (boto3, awsJson 1.1)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import STEP, make_bucket, make_file_system

OBJECTS = {
    "projects/climate/a.nc": b"a" * 10,
    "projects/climate/b.nc": b"b" * 20,
    "projects/other/c.nc": b"c",
    "top.txt": b"t",
}
NO_REPORT = {"Enabled": False}


@pytest.fixture()
def fs_id(fsx: Any, s3: Any) -> str:
    make_bucket(s3, "repo", OBJECTS)
    return make_file_system(fsx, "s3://repo", "s3://repo")


def create(fsx: Any, fs_id: str, kind: str = "EXPORT_TO_REPOSITORY", **kw: Any) -> dict:
    kw.setdefault("Report", NO_REPORT)
    return fsx.create_data_repository_task(Type=kind, FileSystemId=fs_id, **kw)[
        "DataRepositoryTask"]


def describe(fsx: Any, task_id: str) -> dict:
    return fsx.describe_data_repository_tasks(TaskIds=[task_id])["DataRepositoryTasks"][0]


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_create_returns_a_pending_task_of_the_documented_shape(fsx, fs_id):
    task = create(fsx, fs_id, Paths=["projects/climate"],
                  Tags=[{"Key": "job", "Value": "nightly"}])
    assert re.fullmatch(r"task-[0-9a-f]{17}", task["TaskId"])
    assert task["Lifecycle"] == "PENDING"
    assert task["Type"] == "EXPORT_TO_REPOSITORY"
    assert task["FileSystemId"] == fs_id
    assert task["ResourceARN"] == f"arn:aws:fsx:us-east-1:123456789012:task/{task['TaskId']}"
    assert isinstance(task["CreationTime"], datetime)
    assert task["Paths"] == ["projects/climate"]
    assert task["Report"] == NO_REPORT
    assert task["Tags"] == [{"Key": "job", "Value": "nightly"}]
    assert "StartTime" not in task and "EndTime" not in task and "Status" not in task
    tags = fsx.list_tags_for_resource(ResourceARN=task["ResourceARN"])["Tags"]
    assert tags == [{"Key": "job", "Value": "nightly"}]


def test_lifecycle_follows_the_manual_clock(fsx, fs_id, ctl):
    task = create(fsx, fs_id, Paths=["projects/climate"])
    created = task["CreationTime"].timestamp()
    assert describe(fsx, task["TaskId"])["Lifecycle"] == "PENDING"

    ctl.advance(steps=1)
    running = describe(fsx, task["TaskId"])
    assert running["Lifecycle"] == "EXECUTING"
    assert running["StartTime"].timestamp() == pytest.approx(created + STEP)
    assert running["Status"]["TotalCount"] == 2
    assert running["Status"]["SucceededCount"] == 0

    ctl.advance(seconds=STEP / 2)
    assert describe(fsx, task["TaskId"])["Status"]["SucceededCount"] == 1

    ctl.advance(seconds=STEP / 2)
    done = describe(fsx, task["TaskId"])
    assert done["Lifecycle"] == "SUCCEEDED"
    assert done["EndTime"].timestamp() == pytest.approx(created + 2 * STEP)
    assert done["Status"] == {"TotalCount": 2, "SucceededCount": 2, "FailedCount": 0,
                              "LastUpdatedTime": done["EndTime"]}
    assert "FailureDetails" not in done


@pytest.mark.parametrize("kind,paths,expected", [
    ("EXPORT_TO_REPOSITORY", None, 4),
    ("EXPORT_TO_REPOSITORY", ["projects"], 3),
    ("IMPORT_METADATA_FROM_REPOSITORY", None, 4),
    ("IMPORT_METADATA_FROM_REPOSITORY", ["s3://repo/projects/climate"], 2),
    ("IMPORT_METADATA_FROM_REPOSITORY", ["s3://repo/projects/climate/a.nc"], 1),
    ("RELEASE_DATA_FROM_FILESYSTEM", ["/"], 4),
    ("RELEASE_DATA_FROM_FILESYSTEM", ["projects/other"], 1),
])
def test_counts_come_from_the_objects_in_s3(fsx, fs_id, ctl, kind, paths, expected):
    kw = {"Paths": paths} if paths is not None else {}
    task = create(fsx, fs_id, kind, **kw)
    ctl.advance(steps=2)
    done = describe(fsx, task["TaskId"])
    assert done["Lifecycle"] == "SUCCEEDED"
    assert done["Status"]["TotalCount"] == expected
    assert done["Status"]["SucceededCount"] == expected


def test_objects_uploaded_before_the_task_starts_are_counted(fsx, fs_id, s3, ctl):
    task = create(fsx, fs_id, "IMPORT_METADATA_FROM_REPOSITORY")
    s3.put_object(Bucket="repo", Key="late/d.nc", Body=b"d")
    ctl.advance(steps=2)
    assert describe(fsx, task["TaskId"])["Status"]["TotalCount"] == 5


def test_auto_release_reports_released_capacity(fsx, fs_id, ctl):
    task = create(fsx, fs_id, "AUTO_RELEASE_DATA", CapacityToRelease=7)
    assert task["CapacityToRelease"] == 7
    ctl.advance(steps=2)
    assert describe(fsx, task["TaskId"])["Status"]["ReleasedCapacity"] == 7


def test_release_configuration_is_echoed(fsx, fs_id):
    config = {"DurationSinceLastAccess": {"Unit": "DAYS", "Value": 3}}
    task = create(fsx, fs_id, "RELEASE_DATA_FROM_FILESYSTEM", Paths=["/"],
                  ReleaseConfiguration=config)
    assert task["ReleaseConfiguration"] == config


def test_a_second_task_conflicts_until_the_first_ends(fsx, fs_id, ctl):
    first = create(fsx, fs_id)
    for _ in range(2):  # PENDING, then EXECUTING
        with pytest.raises(ClientError) as excinfo:
            create(fsx, fs_id, "IMPORT_METADATA_FROM_REPOSITORY")
        assert error_code(excinfo) == "DataRepositoryTaskExecuting"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        ctl.advance(steps=1)
    assert describe(fsx, first["TaskId"])["Lifecycle"] == "SUCCEEDED"
    assert create(fsx, fs_id, "IMPORT_METADATA_FROM_REPOSITORY")["Lifecycle"] == "PENDING"


def test_same_token_and_request_returns_the_same_task_even_while_it_runs(fsx, fs_id, ctl):
    kw = {"Paths": ["projects"], "ClientRequestToken": "ferry-abc123"}
    first = create(fsx, fs_id, **kw)
    ctl.advance(steps=1)
    again = create(fsx, fs_id, **kw)
    assert again["TaskId"] == first["TaskId"]
    assert again["Lifecycle"] == "EXECUTING"
    ctl.advance(steps=1)
    assert create(fsx, fs_id, **kw)["Lifecycle"] == "SUCCEEDED"
    tasks = fsx.describe_data_repository_tasks()["DataRepositoryTasks"]
    assert [t["TaskId"] for t in tasks] == [first["TaskId"]]


def test_same_token_with_a_different_request_is_incompatible(fsx, fs_id, ctl):
    create(fsx, fs_id, Paths=["projects"], ClientRequestToken="ferry-abc123")
    ctl.advance(steps=2)
    with pytest.raises(ClientError) as excinfo:
        create(fsx, fs_id, Paths=["top.txt"], ClientRequestToken="ferry-abc123")
    assert error_code(excinfo) == "IncompatibleParameterError"
    assert excinfo.value.response["Parameter"] == "ClientRequestToken"


def test_file_system_not_found(fsx, fs_id):
    with pytest.raises(ClientError) as excinfo:
        create(fsx, "fs-0123456789abcdef0")
    assert error_code(excinfo) == "FileSystemNotFound"


@pytest.mark.parametrize("kind,kw,needle", [
    ("EXPORT_TO_REPOSITORY", {"Paths": ["/mnt/fsx/projects"]}, "relative"),
    ("EXPORT_TO_REPOSITORY", {"Paths": ["projects/../etc"]}, ".."),
    ("EXPORT_TO_REPOSITORY", {"Paths": ["s3://repo/projects"]}, "file system path"),
    ("RELEASE_DATA_FROM_FILESYSTEM", {"Paths": ["/projects"]}, "relative"),
    ("IMPORT_METADATA_FROM_REPOSITORY", {"Paths": ["projects"]}, "S3 URL"),
    ("IMPORT_METADATA_FROM_REPOSITORY", {"Paths": ["s3://elsewhere/x"]}, "data repository"),
    ("IMPORT_METADATA_FROM_REPOSITORY", {"Paths": ["s3://repo/a/../b"]}, ".."),
    ("EXPORT_TO_REPOSITORY", {"Paths": [f"p{i}" for i in range(101)]}, "at most 100"),
    ("EXPORT_TO_REPOSITORY", {"Paths": ["p" * 4097]}, "4096"),
    ("EXPORT_TO_REPOSITORY", {"Paths": ["a\nb"]}, "LF"),
    ("EXPORT_TO_REPOSITORY", {"Report": {"Enabled": True}}, "Path, Format and Scope"),
    ("EXPORT_TO_REPOSITORY", {"Report": {"Enabled": True, "Path": "s3://other/reports",
                                         "Format": "REPORT_CSV_20191124",
                                         "Scope": "FAILED_FILES_ONLY"}}, "export path"),
    ("EXPORT_TO_REPOSITORY", {"ClientRequestToken": "has space"}, "ClientRequestToken"),
    ("BOGUS_TYPE", {}, "Type"),
    ("EXPORT_TO_REPOSITORY", {"CapacityToRelease": 5}, "CapacityToRelease"),
    ("AUTO_RELEASE_DATA", {}, "CapacityToRelease"),
])
def test_invalid_requests_are_bad_requests(fsx, fs_id, kind, kw, needle):
    with pytest.raises(ClientError) as excinfo:
        create(fsx, fs_id, kind, **kw)
    assert error_code(excinfo) == "BadRequest"
    assert needle in excinfo.value.response["Error"]["Message"]


def test_a_file_system_without_a_data_repository_is_a_bad_request(fsx):
    fs = make_file_system(fsx, import_path=None)
    with pytest.raises(ClientError) as excinfo:
        create(fsx, fs)
    assert error_code(excinfo) == "BadRequest"


def test_invalid_paths_can_fail_the_task_instead(fsx, fs_id, ctl):
    ctl.config(invalid_paths="fail_task")
    task = create(fsx, fs_id, Paths=["/absolute"])
    ctl.advance(steps=2)
    done = describe(fsx, task["TaskId"])
    assert done["Lifecycle"] == "FAILED"
    assert "relative" in done["FailureDetails"]["Message"]


def test_describe_filters(fsx, s3, fs_id, ctl):
    other = make_file_system(fsx, "s3://repo", "s3://repo")
    a = create(fsx, fs_id)
    ctl.advance(steps=2)
    b = create(fsx, fs_id)
    c = create(fsx, other)

    def ids(**kw: Any) -> list[str]:
        return [t["TaskId"] for t in fsx.describe_data_repository_tasks(**kw)[
            "DataRepositoryTasks"]]

    assert ids() == [a["TaskId"], b["TaskId"], c["TaskId"]]
    assert ids(Filters=[{"Name": "file-system-id", "Values": [fs_id]}]) == [a["TaskId"],
                                                                              b["TaskId"]]
    assert ids(Filters=[{"Name": "task-lifecycle", "Values": ["SUCCEEDED"]}]) == [a["TaskId"]]
    assert ids(Filters=[{"Name": "file-system-id", "Values": [other]},
                        {"Name": "task-lifecycle", "Values": ["PENDING"]}]) == [c["TaskId"]]
    assert ids(TaskIds=[c["TaskId"], a["TaskId"]]) == [a["TaskId"], c["TaskId"]]
    assert ids(Filters=[{"Name": "file-cache-id", "Values": ["fc-0123456789abcdef0"]}]) == []


def test_describe_errors(fsx, fs_id):
    with pytest.raises(ClientError) as excinfo:
        fsx.describe_data_repository_tasks(TaskIds=["task-0123456789abcdef0"])
    assert error_code(excinfo) == "DataRepositoryTaskNotFound"
    with pytest.raises(ClientError) as excinfo:
        fsx.describe_data_repository_tasks(
            Filters=[{"Name": "file-system-id", "Values": ["fs-0123456789abcdef0"]}])
    assert error_code(excinfo) == "FileSystemNotFound"
    with pytest.raises(ClientError) as excinfo:
        fsx.describe_data_repository_tasks(Filters=[{"Name": "backup-type", "Values": ["x"]}])
    assert error_code(excinfo) == "BadRequest"
    with pytest.raises(ClientError) as excinfo:
        fsx.describe_data_repository_tasks(NextToken="bm90LWpzb24=")
    assert error_code(excinfo) == "BadRequest"


def test_describe_paginates_in_pages_of_at_most_50(fsx, fs_id, ctl):
    created = []
    for _ in range(53):
        created.append(create(fsx, fs_id)["TaskId"])
        ctl.advance(steps=2)
    page = fsx.describe_data_repository_tasks(MaxResults=1000)
    assert len(page["DataRepositoryTasks"]) == 50 and "NextToken" in page
    rest = fsx.describe_data_repository_tasks(MaxResults=1000, NextToken=page["NextToken"])
    assert len(rest["DataRepositoryTasks"]) == 3 and "NextToken" not in rest

    seen, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        page = fsx.describe_data_repository_tasks(
            Filters=[{"Name": "file-system-id", "Values": [fs_id]}], MaxResults=7, **kw)
        assert len(page["DataRepositoryTasks"]) <= 7
        seen += [t["TaskId"] for t in page["DataRepositoryTasks"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert seen == created and pages == 8


def test_cancel_pending_and_executing_tasks(fsx, fs_id, ctl):
    pending = create(fsx, fs_id)
    answer = fsx.cancel_data_repository_task(TaskId=pending["TaskId"])
    assert answer["Lifecycle"] == "CANCELING" and answer["TaskId"] == pending["TaskId"]
    with pytest.raises(ClientError) as excinfo:  # still busy while cancelling
        create(fsx, fs_id)
    assert error_code(excinfo) == "DataRepositoryTaskExecuting"
    ctl.advance(steps=1)
    done = describe(fsx, pending["TaskId"])
    assert done["Lifecycle"] == "CANCELED" and "EndTime" in done

    running = create(fsx, fs_id)
    ctl.advance(steps=1.5)
    assert describe(fsx, running["TaskId"])["Lifecycle"] == "EXECUTING"
    fsx.cancel_data_repository_task(TaskId=running["TaskId"])
    ctl.advance(steps=1)
    done = describe(fsx, running["TaskId"])
    assert done["Lifecycle"] == "CANCELED"
    assert done["Status"]["TotalCount"] == 4
    assert done["Status"]["SucceededCount"] == 2  # half way through when cancelled

    with pytest.raises(ClientError) as excinfo:
        fsx.cancel_data_repository_task(TaskId=running["TaskId"])
    assert error_code(excinfo) == "DataRepositoryTaskEnded"
    with pytest.raises(ClientError) as excinfo:
        fsx.cancel_data_repository_task(TaskId="task-0123456789abcdef0")
    assert error_code(excinfo) == "DataRepositoryTaskNotFound"


ODD_PATHS = [
    ("@odd.nc", '"""@odd.nc"""'),
    ("+plus.nc", '"""+plus.nc"""'),
    ("-minus.nc", '"""-minus.nc"""'),
    ("=eq.nc", '"""=eq.nc"""'),
    ("file,name.txt", '"file,name.txt"'),
    ('file"name.txt', '"file""name.txt"'),
    ("dir1/myLargeFile", "dir1/myLargeFile"),
]


def test_injected_failures_write_the_completion_report(fsx, s3, fs_id, ctl):
    ctl.fsx_fail(fs_id, files=[{"path": path, "error_code": "FileSizeTooLarge"}
                               for path, _ in ODD_PATHS[:-1]]
                 + [{"path": "dir1/myLargeFile", "error_code": "S3AccessDenied"}])
    report = {"Enabled": True, "Path": "s3://repo/ferry-reports/",
              "Format": "REPORT_CSV_20191124", "Scope": "FAILED_FILES_ONLY"}
    task = create(fsx, fs_id, Report=report)
    ctl.advance(steps=2)
    done = describe(fsx, task["TaskId"])
    assert done["Lifecycle"] == "FAILED"
    assert done["Status"]["FailedCount"] == len(ODD_PATHS)
    assert done["Status"]["TotalCount"] == len(OBJECTS) + len(ODD_PATHS)
    assert done["Status"]["SucceededCount"] == len(OBJECTS)
    assert 1 <= len(done["FailureDetails"]["Message"]) <= 256
    assert done["Report"] == report

    key = f"ferry-reports/{task['TaskId']}/failures.csv"
    body = s3.get_object(Bucket="repo", Key=key)["Body"].read().decode()
    expected = [f"{encoded},failed,FileSizeTooLarge" for _, encoded in ODD_PATHS[:-1]]
    expected.append("dir1/myLargeFile,failed,S3AccessDenied")
    assert body == "\r\n".join(expected) + "\r\n"

    # Only the next task was planned to fail.
    nxt = create(fsx, fs_id)
    ctl.advance(steps=2)
    assert describe(fsx, nxt["TaskId"])["Lifecycle"] == "SUCCEEDED"


def test_import_failures_go_to_report_csv_and_count_picks_real_files(fsx, s3, fs_id, ctl):
    ctl.fsx_fail(fs_id, count=2, error_code="S3ObjectNotFound")
    report = {"Enabled": True, "Path": "s3://repo/reports", "Format": "REPORT_CSV_20191124",
              "Scope": "FAILED_FILES_ONLY"}
    task = create(fsx, fs_id, "IMPORT_METADATA_FROM_REPOSITORY", Report=report)
    ctl.advance(steps=2)
    done = describe(fsx, task["TaskId"])
    assert done["Status"] == {**done["Status"], "TotalCount": 4, "FailedCount": 2,
                              "SucceededCount": 2}
    body = s3.get_object(Bucket="repo", Key=f"reports/{task['TaskId']}/report.csv")["Body"]
    assert body.read().decode().splitlines() == [
        "projects/climate/a.nc,failed,S3ObjectNotFound",
        "projects/climate/b.nc,failed,S3ObjectNotFound",
    ]


def test_failures_without_a_report_write_nothing(fsx, s3, fs_id, ctl):
    ctl.fsx_fail(fs_id, count=1, message="Some files failed to export.")
    task = create(fsx, fs_id)
    ctl.advance(steps=2)
    done = describe(fsx, task["TaskId"])
    assert done["Lifecycle"] == "FAILED"
    assert done["FailureDetails"] == {"Message": "Some files failed to export."}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="repo").get("Contents", [])]
    assert sorted(keys) == sorted(OBJECTS)


def test_held_task_stays_executing_until_released(fsx, fs_id, ctl):
    ctl.hold(file_system_id=fs_id)
    task = create(fsx, fs_id)
    ctl.advance(steps=20)
    held = describe(fsx, task["TaskId"])
    assert held["Lifecycle"] == "EXECUTING"
    assert held["Status"]["SucceededCount"] == 2  # stops half way
    assert ctl.release(file_system_id=fs_id) == [task["TaskId"]]
    assert describe(fsx, task["TaskId"])["Lifecycle"] == "EXECUTING"
    ctl.advance(steps=1)
    assert describe(fsx, task["TaskId"])["Lifecycle"] == "SUCCEEDED"


def test_local_files_are_counted_and_exported(fsx, s3, ctl):
    make_bucket(s3, "repo2", {"in/x.dat": b"x"})
    fs = make_file_system(fsx, "s3://repo2/in", "s3://repo2/out")
    ctl.fsx_files(fs, {"results/r1.csv": "1,2\n", "results/r2.csv": "3,4\n"})
    task = create(fsx, fs, Paths=["results"])
    ctl.advance(steps=2)
    assert describe(fsx, task["TaskId"])["Status"]["TotalCount"] == 2
    body = s3.get_object(Bucket="repo2", Key="out/results/r1.csv")["Body"].read()
    assert body == b"1,2\n"


def test_default_export_path_follows_fsx_and_bounds_the_report_path(fsx, s3):
    make_bucket(s3, "repo3")
    fs = make_file_system(fsx, "s3://repo3", None)
    report = {"Enabled": True, "Path": "s3://repo3/reports", "Format": "REPORT_CSV_20191124",
              "Scope": "FAILED_FILES_ONLY"}
    with pytest.raises(ClientError) as excinfo:
        create(fsx, fs, Report=report)
    assert "s3://repo3/FSxLustre" in excinfo.value.response["Error"]["Message"]


def test_data_repository_associations_link_paths(fsx, s3, ctl):
    make_bucket(s3, "lake", {"raw/one.h5": b"1", "raw/two.h5": b"2", "elsewhere/x": b"x"})
    fs = make_file_system(fsx, import_path=None)
    dra = fsx.create_data_repository_association(
        FileSystemId=fs, FileSystemPath="/ns1", DataRepositoryPath="s3://lake/raw")["Association"]
    assert re.fullmatch(r"dra-[0-9a-f]{17}", dra["AssociationId"])
    assert dra["Lifecycle"] == "AVAILABLE"
    listed = fsx.describe_data_repository_associations(
        Filters=[{"Name": "file-system-id", "Values": [fs]}])["Associations"]
    assert [a["AssociationId"] for a in listed] == [dra["AssociationId"]]

    task = create(fsx, fs, Paths=["ns1"])
    ctl.advance(steps=2)
    assert describe(fsx, task["TaskId"])["Status"]["TotalCount"] == 2
    found = fsx.describe_data_repository_tasks(Filters=[
        {"Name": "data-repository-association-id", "Values": [dra["AssociationId"]]}])
    assert [t["TaskId"] for t in found["DataRepositoryTasks"]] == [task["TaskId"]]


def test_fast_clock_runs_tasks_in_real_time(fsx, fs_id, ctl):
    ctl.clock(mode="fast", step_seconds=0.05)
    task = create(fsx, fs_id)
    deadline = time.monotonic() + 10
    while describe(fsx, task["TaskId"])["Lifecycle"] != "SUCCEEDED":
        assert time.monotonic() < deadline, "task did not finish in fast mode"
        time.sleep(0.02)


def test_a_file_system_linked_the_older_way_answers_its_data_repository_configuration(
        fsx: Any, s3: Any) -> None:
    """API_DataRepositoryConfiguration: what DescribeFileSystems answers for a file system
    created with ImportPath (moto alone echoes LustreConfiguration as sent)."""
    make_bucket(s3, "older")
    fs_id = make_file_system(fsx, import_path="s3://older/in")
    [described] = fsx.describe_file_systems(FileSystemIds=[fs_id])["FileSystems"]
    config = described["LustreConfiguration"]["DataRepositoryConfiguration"]
    assert config["ImportPath"] == "s3://older/in"
    assert config["ExportPath"].startswith("s3://older/FSxLustre")
    assert (config["AutoImportPolicy"], config["Lifecycle"]) == ("NONE", "AVAILABLE")
    assert "ImportPath" not in described["LustreConfiguration"]
    # Linked by association instead: no DataRepositoryConfiguration; the association's
    # automatic policies are answered as created.
    linked = make_file_system(fsx, import_path=None)
    assert "DataRepositoryConfiguration" not in fsx.describe_file_systems(
        FileSystemIds=[linked])["FileSystems"][0]["LustreConfiguration"]
    fsx.create_data_repository_association(
        FileSystemId=linked, FileSystemPath="/raw", DataRepositoryPath="s3://older/raw",
        S3={"AutoImportPolicy": {"Events": ["NEW"]},
            "AutoExportPolicy": {"Events": ["NEW", "CHANGED"]}})
    [dra] = fsx.describe_data_repository_associations(
        Filters=[{"Name": "file-system-id", "Values": [linked]}])["Associations"]
    assert dra["S3"] == {"AutoImportPolicy": {"Events": ["NEW"]},
                         "AutoExportPolicy": {"Events": ["NEW", "CHANGED"]}}
