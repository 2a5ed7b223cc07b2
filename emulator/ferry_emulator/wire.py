"""What an AWS SDK request is, and how AWS-shaped answers and errors look on the wire.

TEST INFRASTRUCTURE (Ferry's local AWS emulator).

Every SDK request is signed with SigV4, whose credential scope names the region and the
service's signing name (``Credential=AKID/20260101/us-east-1/fsx/aws4_request``); moto's own
dispatcher routes on the same scope. The operation is read from the protocol:

* awsJson 1.0/1.1 (FSx, DataSync, Step Functions, SQS, DynamoDB): header
  ``X-Amz-Target: <TargetPrefix>.<Operation>``, JSON body;
* awsQuery (SNS, STS): form body ``Action=<Operation>&...``;
* restXml (S3): method and path; :func:`s3_operation` names the common operations so that
  fault rules can target them.

Errors are rendered in each protocol's shape so that SDKs map them to modeled errors:

* awsJson: HTTP 4xx/5xx, body ``{"__type": "<Code>", "Message": "..."}`` (the SDKs read
  ``__type``, or the ``X-Amzn-ErrorType`` header, and ``message``/``Message``);
* awsQuery: ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``;
* S3: ``<Error><Code/><Message/><RequestId/></Error>``.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

#: JSON protocol version per signing name (``Content-Type: application/x-amz-json-<v>``).
JSON_VERSIONS = {"fsx": "1.1", "datasync": "1.1", "states": "1.0", "sqs": "1.0", "kms": "1.1",
                 "dynamodb": "1.0"}


class ApiError(Exception):
    """An AWS error answer: ``code`` is the modeled error name (``__type`` / ``<Code>``)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        extra: dict[str, Any] | None = None,
        message_key: str = "Message",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra or {}
        self.message_key = message_key


@dataclass
class AwsRequest:
    """The parts of one SDK request the emulator looks at."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    service: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    operation: str | None = None
    protocol: str = "unknown"  # json | query | rest-xml | unknown
    body: bytes = b""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str:
        """The account moto files this request under (same order of precedence as moto)."""
        if "MOTO_ACCOUNT_ID" in os.environ:
            return os.environ["MOTO_ACCOUNT_ID"]
        if "x-moto-account-id" in self.headers:
            return self.headers["x-moto-account-id"]
        from moto.iam.models import get_account_id_from  # noqa: PLC0415 (moto is heavy)

        return get_account_id_from(self.access_key or "AKIAEXAMPLE")


def _read_body(environ: dict[str, Any]) -> bytes:
    """Reads the body and puts it back, so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def parse_request(environ: dict[str, Any]) -> AwsRequest:
    headers = {
        k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    path = environ.get("PATH_INFO", "") or "/"
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    req = AwsRequest(method=environ.get("REQUEST_METHOD", "GET"), path=path, query=query,
                     headers=headers)

    scope = _CREDENTIAL.search(headers.get("authorization", ""))
    if scope is None and "X-Amz-Credential" in query:  # presigned URL
        scope = re.match(r"([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request",
                         query["X-Amz-Credential"][0])
    if scope:
        req.access_key, req.region, req.service = scope.group(1), scope.group(2), scope.group(3)
        req.service = req.service.lower()

    target = headers.get("x-amz-target")
    content_type = headers.get("content-type", "")
    if target:
        req.protocol = "json"
        req.operation = target.split(".", 1)[-1]
        req.body = _read_body(environ)
        if req.body:
            try:
                parsed = json.loads(req.body)
                req.params = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                req.params = {}
    elif req.service == "s3" or (req.service is None and "s3" in headers.get("host", "")):
        req.protocol = "rest-xml"
        req.operation = s3_operation(req.method, path, query, headers)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        req.protocol = "query"
        req.body = _read_body(environ)
        form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        req.params = {k: v[0] for k, v in form.items()}
        req.operation = req.params.get("Action")
    elif "Action" in query:
        req.protocol = "query"
        req.params = {k: v[0] for k, v in query.items()}
        req.operation = req.params.get("Action")
    return req


#: Query parameters that select or shape a listing, sign a URL or name the SDK's operation:
#: not S3 sub-resources.
_S3_PLAIN_PARAMS = {
    "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after",
    "fetch-owner", "encoding-type", "list-type", "versionId", "x-id", "max-uploads",
    "key-marker", "upload-id-marker", "version-id-marker", "partNumber", "uploadId",
    "max-parts", "part-number-marker",
}


def s3_operation(method: str, path: str, query: dict[str, list[str]],
                 headers: dict[str, str]) -> str:
    """A coarse S3 operation name for path-style requests (enough to target fault rules).

    Some SDKs (the Rust and Java SDKs among them) add ``?x-id=<Operation>``: that name wins.
    """
    if "x-id" in query:
        return query["x-id"][0]
    parts = unquote(path).lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    sub = sorted(k for k in query if k not in _S3_PLAIN_PARAMS and not k.startswith(
        ("X-Amz-", "response-")))
    suffix = (sub[0][:1].upper() + sub[0][1:]) if sub else ""
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "GET":
            if suffix:
                return {"Versions": "ListObjectVersions", "Location": "GetBucketLocation",
                        "Notification": "GetBucketNotificationConfiguration",
                        "Uploads": "ListMultipartUploads"}.get(suffix, "GetBucket" + suffix)
            return "ListObjectsV2" if "list-type" in query else "ListObjects"
        if method == "PUT":
            return "PutBucket" + suffix if suffix else "CreateBucket"
        if method == "HEAD":
            return "HeadBucket"
        if method == "DELETE":
            return "DeleteBucket" + suffix
        if method == "POST" and suffix == "Delete":
            return "DeleteObjects"
        return f"{method.title()}Bucket{suffix}"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        return "GetObject" + suffix
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        if "x-amz-copy-source" in headers:
            return "CopyObject"
        return "PutObject" + suffix
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject" + suffix
    if method == "POST":
        if suffix == "Uploads":
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    return f"{method.title()}Object{suffix}"


def request_id() -> str:
    return str(uuid.uuid4())


Response = tuple[int, list[tuple[str, str]], bytes]


def json_response(payload: dict[str, Any], service: str | None) -> Response:
    version = JSON_VERSIONS.get(service or "", "1.1")
    body = json.dumps(payload, separators=(",", ":")).encode()
    return 200, [
        ("Content-Type", f"application/x-amz-json-{version}"),
        ("x-amzn-RequestId", request_id()),
    ], body


def error_response(err: ApiError, req: AwsRequest) -> Response:
    """Renders ``err`` in the protocol of ``req``."""
    rid = request_id()
    if req.protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
            f"<RequestId>{rid}</RequestId><HostId>ferry-emulator</HostId></Error>"
        ).encode()
        if req.method == "HEAD":
            body = b""
        return err.status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body
    if req.protocol == "query":
        kind = "Receiver" if err.status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>"
            f"<Message>{escape(err.message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        return err.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body
    version = JSON_VERSIONS.get(req.service or "", "1.1")
    payload: dict[str, Any] = {"__type": err.code, err.message_key: err.message}
    payload.update(err.extra)
    headers = [
        ("Content-Type", f"application/x-amz-json-{version}"),
        ("x-amzn-RequestId", rid),
        ("X-Amzn-ErrorType", err.code),
    ]
    if req.service == "sqs":
        # SQS's JSON protocol is awsQueryCompatible: SDKs read the query-era code from here.
        kind = "Receiver" if err.status >= 500 else "Sender"
        headers.append(("x-amzn-query-error", f"{err.code};{kind}"))
    return err.status, headers, json.dumps(payload).encode()
