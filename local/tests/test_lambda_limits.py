"""The local Lambda service refuses payloads over Lambda's 6 MB as Lambda does
(ferry_local.lambdas: MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES).

No Rust binary needed: the function is a small stand-in runtime (written here) that polls the
Runtime API as lambda_runtime does and answers each event `{"size": n}` with a JSON string of
exactly n bytes, then asks for the next event whatever the Runtime API said.
"""

from __future__ import annotations

import json
import pathlib
import stat
import sys
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from ferry_local import lambdas, paths
from ferry_local.lambdas import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Functions

NAME = "ferry-task-status"
RUNTIME = f"""#!{sys.executable}
import json, os, urllib.error, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
while True:
    with urllib.request.urlopen(api + "/invocation/next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
        size = json.loads(event.read())["size"]
    answer = json.dumps("x" * (size - 2)).encode()
    post = urllib.request.Request(api + "/invocation/" + request_id + "/response", data=answer,
                                  method="POST")
    try:
        status = urllib.request.urlopen(post).status
    except urllib.error.HTTPError as err:
        status = err.code
    print("response", size, "->", status, flush=True)
"""


@pytest.fixture()
def functions(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Functions]:
    runtime = tmp_path / "runtime.py"
    runtime.write_text(RUNTIME)
    runtime.chmod(runtime.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(paths, "binary", lambda name: runtime)
    with Functions(tmp_path, {}, names=(NAME,), timeouts={NAME: 30}) as f:
        yield f


def test_a_response_of_6291556_bytes_is_returned_and_one_byte_more_is_lambdas_error(
        functions: Functions) -> None:
    answer = functions.invoke(NAME, {"size": MAX_RESPONSE_BYTES})
    assert answer.ok and len(json.dumps(answer.payload)) == MAX_RESPONSE_BYTES
    over = functions.invoke(NAME, {"size": MAX_RESPONSE_BYTES + 1})
    assert over.error_type == "Function.ResponseSizeTooLarge"
    assert over.error_message == ("Response payload size exceeded maximum allowed payload size "
                                  "(6291556 bytes).")
    # The runtime was told 413 and carries on: the same instance answers the next event.
    assert functions.invoke(NAME, {"size": 10}).payload == "x" * 8
    assert functions.starts[NAME] == 1
    log = functions.log_path(NAME).read_text()
    assert f"response {MAX_RESPONSE_BYTES + 1} -> 413" in log


def test_an_invoke_request_over_6291456_bytes_is_refused_with_413(functions: Functions) -> None:
    # {"size": 10, "pad": "…"} of exactly the limit reaches the function; one byte more does not.
    overhead = len(json.dumps({"size": 10, "pad": ""}).encode())
    assert functions.invoke(NAME, {"size": 10, "pad": "p" * (MAX_REQUEST_BYTES - overhead)}).ok
    refused = functions.invoke(NAME, {"size": 10, "pad": "p" * (MAX_REQUEST_BYTES - overhead + 1)})
    assert refused.error_type == "RequestTooLargeException"
    request = urllib.request.Request(f"{functions.url}/2015-03-31/functions/{NAME}/invocations",
                                     data=b"1" * (MAX_REQUEST_BYTES + 1), method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=30)
    assert excinfo.value.code == 413
    assert json.loads(refused.error_message) == {
        "Type": "User",
        "message": "6291457 byte payload is too large for the RequestResponse invocation type "
                   "(limit 6291456 bytes)"}
    assert "response 10 -> 202" in functions.log_path(NAME).read_text()
    assert lambdas.MAX_REQUEST_BYTES == 6_291_456
