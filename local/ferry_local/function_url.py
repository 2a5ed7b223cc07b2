"""submit's function URL with `AuthType: AWS_IAM`, as Lambda serves one. TEST AND DEMO
INFRASTRUCTURE.

What Lambda does and this does too (Lambda developer guide, "Invoking Lambda function URLs" and
"Control access to Lambda function URLs"):

* every request must be signed with Signature Version 4 for the service `lambda` in the
  function's region; the signature is checked against the caller's secret key (AWS General
  Reference, "Create a signed AWS API request": canonical request, string to sign, signing key).
  A request that is unsigned, signed for another service or region, signed with a key nobody
  has, more than 15 minutes off, or whose signature does not match is answered 403
  `{"Message": "Forbidden"}` and never reaches the function;
* a principal without permission (`lambda:InvokeFunctionUrl` and `lambda:InvokeFunction`) is
  refused the same way: here, a principal is allowed when it is in `identities` with
  `allowed=True`;
* the function receives payload format 2.0 (`rawPath`, `headers`, `requestContext` with
  `authorizer.iam.userArn` the caller's verified ARN, `http.method`, `body`,
  `isBase64Encoded` true unless the content type is text or JSON), and its answer
  (`statusCode`, `headers`, `body`) becomes the HTTP response; a function error is 502
  `{"Message": "Internal Server Error"}`.

Not modelled: resource-based policies, cross-account callers, CORS, response streaming,
cookies, and `principalOrgId`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .emulator_process import ACCOUNT, REGION

#: Skew allowed between a request's X-Amz-Date and now (SigV4: "Signature expired" past it).
MAX_SKEW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Identity:
    """A caller the local account knows: its secret key, its ARN, whether IAM lets it call."""

    secret: str
    arn: str
    allowed: bool = True


#: The harness's callers, by access key id. `testing` is what every harness client uses; its
#: ARN is what moto's GetCallerIdentity answers for any credentials, so the CLI's identity is
#: the same whichever way it asks.
IDENTITIES: dict[str, Identity] = {
    "testing": Identity("testing", f"arn:aws:sts::{ACCOUNT}:user/moto"),
    "ASIALOCALALICE": Identity("alice-secret",
                               f"arn:aws:sts::{ACCOUNT}:assumed-role/hpc-users/alice"),
    "ASIALOCALBOB": Identity("bob-secret", f"arn:aws:sts::{ACCOUNT}:assumed-role/hpc-users/bob"),
    "AKIALOCALMALLORY": Identity("mallory-secret", f"arn:aws:iam::{ACCOUNT}:user/mallory",
                                 allowed=False),
}


#: submit's access policy in the harness (FERRY_ACCESS_POLICY): the operator (`testing`) may do
#: anything; hpc-users may submit and cancel their own exports and imports.
LOCAL_POLICY: dict[str, Any] = {"rules": [
    {"name": "local-operator", "principals": [IDENTITIES["testing"].arn],
     "actions": ["submit", "cancel", "cancel-others"]},
    {"name": "hpc-users", "principals": [f"arn:aws:sts::{ACCOUNT}:assumed-role/hpc-users/*"],
     "actions": ["submit", "cancel"], "kinds": ["fsx_export", "fsx_import"]},
]}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _authorization(header: str) -> dict[str, str] | None:
    """`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` → its three fields."""
    algorithm, _, rest = header.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return None
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    return fields if {"Credential", "SignedHeaders", "Signature"} <= fields.keys() else None


def verify(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
           identities: Mapping[str, Identity], now: dt.datetime) -> tuple[str, Identity] | None:
    """The caller of a SigV4-signed request (its access key id and identity), or None when
    the signature does not hold."""
    lower = {k.lower(): v for k, v in headers.items()}
    fields = _authorization(lower.get("authorization", ""))
    if fields is None:
        return None
    key_id, _, scope = fields["Credential"].partition("/")
    date, region, service, terminal = (scope.split("/") + ["", "", "", ""])[:4]
    identity = identities.get(key_id)
    amz_date = lower.get("x-amz-date", "")
    if (identity is None or region != REGION or service != "lambda"
            or terminal != "aws4_request" or not amz_date.startswith(date)):
        return None
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if abs(now - signed_at) > MAX_SKEW:
        return None
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or any(name not in lower for name in signed):
        return None
    canonical_headers = "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in signed)
    canonical_query = "&".join(sorted(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    payload_hash = lower.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, urllib.parse.quote(path or "/", safe="/-_.~"),
                           canonical_query, canonical_headers, fields["SignedHeaders"],
                           payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + identity.secret).encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (key_id, identity) if hmac.compare_digest(expected, fields["Signature"]) else None


def event(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
          caller: Identity, key_id: str, url_id: str) -> dict[str, Any]:
    """The payload format 2.0 event Lambda hands the function for this request."""
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    text = content_type.startswith("text/") or "json" in content_type
    now = dt.datetime.now(dt.UTC)
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path or "/", "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": ACCOUNT, "apiId": url_id,
            "authorizer": {"iam": {"accessKey": key_id, "accountId": ACCOUNT,
                                   "callerId": caller.arn.rsplit("/", 1)[-1],
                                   "cognitoIdentity": None, "principalOrgId": None,
                                   "userArn": caller.arn, "userId": caller.arn}},
            "domainName": f"{url_id}.lambda-url.{REGION}.on.aws", "domainPrefix": url_id,
            "http": {"method": method, "path": path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1",
                     "userAgent": {k.lower(): v for k, v in headers.items()}.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body.decode() if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text,
    }


class FunctionUrl:
    """One function's URL on 127.0.0.1: `invoke(payload)` calls the function and returns
    `(ok, answer)` (ok False: a function error)."""

    def __init__(self, invoke: Callable[[dict[str, Any]], tuple[bool, Any]],
                 identities: Mapping[str, Identity] = IDENTITIES) -> None:
        self.invoke = invoke
        self.identities = identities
        self.url_id = uuid.uuid4().hex
        #: Each request answered: (caller ARN or None, HTTP status).
        self.requests: list[tuple[str | None, int]] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="function-url")
        self.url = f"http://127.0.0.1:{self._server.server_port}/"

    def __enter__(self) -> "FunctionUrl":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        path, _, query = target.partition("?")
        found = verify(method, path, query, headers, body, self.identities,
                       dt.datetime.now(dt.UTC))
        if found is None or not found[1].allowed:
            self.requests.append((found[1].arn if found else None, 403))
            return 403, {"Content-Type": "application/json",
                         "x-amzn-ErrorType": "AccessDeniedException"}, b'{"Message":"Forbidden"}'
        key_id, caller = found
        payload = event(method, path, query, headers, body, caller, key_id, self.url_id)
        ok, answer = self.invoke(payload)
        if not ok or not isinstance(answer, dict) or "statusCode" not in answer:
            self.requests.append((caller.arn, 502))
            return 502, {"Content-Type": "application/json"}, \
                b'{"Message":"Internal Server Error"}'
        status = int(answer["statusCode"])
        self.requests.append((caller.arn, status))
        text = answer.get("body") or ""
        data = base64.b64decode(text) if answer.get("isBase64Encoded") else text.encode()
        return status, dict(answer.get("headers") or {}), data

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, data = service.answer(
                    self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

        return Handler


def identity_env(key_id: str) -> dict[str, str]:
    """The credentials variables of the harness identity `key_id` (for the CLI)."""
    return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": IDENTITIES[key_id].secret}

