"""The lane ports' contract (issue 29) on the real lane table adapter: `AwsLanes` against the
emulator's DynamoDB, on the table the harness creates with template.yaml's key schema.

`tests/tests/all/lane_contract.rs` holds the contract and runs it on `FakeLanes` in
`cargo test`; its `aws_lanes_keep_the_lane_contract` is ignored there (it needs a table) and run
here, so the fake every unit test and the simulation use cannot drift from the table Ferry
deploys without a test failing.
"""

from __future__ import annotations

import os
import subprocess

from conftest import World
from ferry_local import paths
from ferry_local.ferry import LocalFerry

TEST = "lane_contract::aws_lanes_keep_the_lane_contract"


def test_the_lane_table_adapter_keeps_the_contract_the_fake_keeps(world: World,
                                                                  ferry: LocalFerry) -> None:
    env = {**os.environ, **ferry.cli_env(), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        # `--workspace`, as `make test` builds it: the same features, so the same binary (with
        # `-p ferry-tests` cargo would build the library again with fewer features).
        ["cargo", "test", "--workspace", "--locked", "--test", "all", "--",
         "--ignored", "--exact", TEST],
        cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "1 passed" in output, output[-3000:]
