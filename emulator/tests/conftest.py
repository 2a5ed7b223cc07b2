"""Fixtures for the emulator's own tests (TEST INFRASTRUCTURE).

One emulator process per test session, on a free port picked by the OS; every test starts from
a reset emulator whose clock is manual (no sleeps: tests advance time themselves).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

EMULATOR_DIR = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(EMULATOR_DIR))

from ferry_emulator.client import EmulatorControl  # noqa: E402

STEP = 10.0  # seconds of emulated time per lifecycle step in these tests
SUBNET = "subnet-0123456789abcdef0"
ROLE = "arn:aws:iam::123456789012:role/ferry-test"

_timings: dict[str, float] = {}


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("emulator")
    url_file, log_path = work / "url", work / "log"
    began = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferry_emulator", "--port", "0", "--url-file", str(url_file),
             "--quiet"],
            cwd=EMULATOR_DIR, env={**os.environ, "PYTHONPATH": str(EMULATOR_DIR)},
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        while not url_file.exists():
            if proc.poll() is not None:
                pytest.fail(f"emulator exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() - began > 60:
                pytest.fail(f"emulator not ready after 60s:\n{log_path.read_text()}")
            time.sleep(0.02)
        url = url_file.read_text().strip()
        EmulatorControl(url).wait_ready()
        _timings["server start (process spawn to healthy)"] = time.monotonic() - began
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def ctl(emulator_url: str) -> EmulatorControl:
    control = EmulatorControl(emulator_url)
    control.reset()
    control.clock(mode="manual", step_seconds=STEP)
    return control


@pytest.fixture(scope="session")
def _clients(emulator_url: str) -> Callable[..., Any]:
    cache: dict[tuple[str, int, str], Any] = {}

    def make(service: str, retries: int = 1, region: str = "us-east-1") -> Any:
        key = (service, retries, region)
        if key not in cache:
            cache[key] = boto3.client(
                service, endpoint_url=emulator_url, region_name=region,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": retries, "mode": "standard"}),
            )
        return cache[key]

    return make


@pytest.fixture()
def aws(_clients: Callable[..., Any], ctl: EmulatorControl) -> Callable[..., Any]:
    """``aws("fsx")``: a boto3 client for the (reset) emulator; no retries unless asked
    (``retries`` is the total number of attempts)."""
    return _clients


def make_bucket(s3: Any, bucket: str, objects: dict[str, bytes] | None = None) -> None:
    s3.create_bucket(Bucket=bucket)
    for key, body in (objects or {}).items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def make_file_system(fsx: Any, import_path: str | None = "s3://repo",
                     export_path: str | None = None) -> str:
    lustre: dict[str, Any] = {"DeploymentType": "SCRATCH_2"}
    if import_path:
        lustre["ImportPath"] = import_path
    if export_path:
        lustre["ExportPath"] = export_path
    fs = fsx.create_file_system(FileSystemType="LUSTRE", StorageCapacity=1200,
                                SubnetIds=[SUBNET], LustreConfiguration=lustre)
    return fs["FileSystem"]["FileSystemId"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, seconds in _timings.items():
        terminalreporter.write_line(f"ferry emulator: {name}: {seconds:.2f}s")


# One client per service a test names: `def test_x(fsx, ds, s3)`.
@pytest.fixture()
def fsx(aws: Callable[..., Any]) -> Any:
    return aws("fsx")


@pytest.fixture()
def ds(aws: Callable[..., Any]) -> Any:
    return aws("datasync")


@pytest.fixture()
def s3(aws: Callable[..., Any]) -> Any:
    return aws("s3")
