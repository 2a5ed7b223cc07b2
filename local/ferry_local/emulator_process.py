"""The local AWS emulator (emulator/ferry_emulator), run as a child process of the harness.

TEST AND DEMO INFRASTRUCTURE. Each harness starts its own emulator on a port the OS picks,
instead of sharing the one `scripts/emulator.sh start` manages (.tools/emulator.url): a demo or
test run then never resets or pollutes an emulator someone else is using, and two runs can go
on side by side.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import boto3
from botocore.config import Config

from . import paths, processes

sys.path.insert(0, str(paths.EMULATOR))
from ferry_emulator.client import EmulatorControl, aws_env  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
#: The account in moto's DataSync ARNs (hard-coded there, whoever calls), so in DataSync's events.
DATASYNC_ACCOUNT = "111222333444"


class Emulator:
    """``with Emulator(log_dir) as emu:`` — ``emu.url``, ``emu.ctl``, ``emu.client("s3")``."""

    def __init__(self, log_dir: pathlib.Path, start_timeout: float = 60.0) -> None:
        self.log_path = log_dir / "emulator.log"
        self._url_file = log_dir / "emulator.url"
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._clients: dict[tuple[str, int], Any] = {}
        self.url = ""
        self.ctl: EmulatorControl

    def start(self) -> "Emulator":
        self._url_file.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": str(paths.EMULATOR)}
        with open(self.log_path, "wb") as log:
            self._proc = processes.spawn(
                [sys.executable, "-m", "ferry_emulator", "--port", "0",
                 "--url-file", str(self._url_file), "--quiet"],
                env=env, cwd=paths.EMULATOR, stdout=log)
        began = time.monotonic()
        while not self._url_file.exists():
            if self._proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self._proc.returncode}; "
                                   f"log {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            if time.monotonic() - began > self._start_timeout:
                self.stop()
                raise RuntimeError(f"the emulator was not ready after {self._start_timeout:.0f}s"
                                   f" (log {self.log_path})")
            time.sleep(0.02)
        self.url = self._url_file.read_text().strip()
        self.ctl = EmulatorControl(self.url)
        self.ctl.wait_ready()
        return self

    def stop(self) -> None:
        processes.stop(self._proc, timeout=10)
        self._proc = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return aws_env(self.url, REGION)

    def client(self, service: str, attempts: int = 3) -> Any:
        """A boto3 client for the emulator (dummy credentials; `attempts` in all)."""
        key = (service, attempts)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service, endpoint_url=self.url, region_name=REGION,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}))
        return self._clients[key]
