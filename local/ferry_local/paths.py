"""Where things are in the repository, and where a run writes its logs."""

from __future__ import annotations

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "emulator"
STATEMACHINE_TEST = ROOT / "statemachine" / "test"
DEFINITION = ROOT / "statemachine" / "ferry.asl.json"
TEMPLATE = ROOT / "template.yaml"
TOOLS = ROOT / ".tools"
#: The workspace's binaries: `cargo build --workspace --bins` (FERRY_PROFILE debug, the default,
#: or release), or `make build`'s Lambda artifacts (FERRY_PROFILE=lambda, what CI tests).
TARGET_DIR = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
FUNCTIONS = ("ferry-start-task", "ferry-task-status", "ferry-cancel-task", "ferry-notify",
             "ferry-s3-trigger", "ferry-lane", "ferry-submit", "ferry-datasync-event")


def binary(name: str) -> pathlib.Path:
    profile = os.environ.get("FERRY_PROFILE", "debug")
    if profile == "lambda":
        return TARGET_DIR / "lambda" / name / "bootstrap"
    return TARGET_DIR / profile / name


def cli() -> pathlib.Path:
    """The `ferry` command. With FERRY_PROFILE=lambda (make build's artifacts, which leave the
    CLI out) the debug one `cargo test --workspace` builds for the CLI's own tests."""
    profile = os.environ.get("FERRY_PROFILE", "debug")
    return TARGET_DIR / ("debug" if profile == "lambda" else profile) / "ferry"


def log_dir(run: str) -> pathlib.Path:
    """A fresh folder for one run's logs, under .tools/ (gitignored, and outside anything a
    watcher looks at)."""
    path = TOOLS / "logs" / run
    path.mkdir(parents=True, exist_ok=True)
    for old in path.rglob("*.log"):
        old.unlink()
    return path
