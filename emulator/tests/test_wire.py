"""Request classification (no server needed)."""

from __future__ import annotations

import pytest

from ferry_emulator.fsx import completion_report_csv
from ferry_emulator.datasync import _match
from ferry_emulator.wire import s3_operation


@pytest.mark.parametrize("method,path,query,headers,expected", [
    ("GET", "/", {}, {}, "ListBuckets"),
    ("PUT", "/b", {}, {}, "CreateBucket"),
    ("GET", "/b", {"list-type": ["2"], "prefix": ["a/"]}, {}, "ListObjectsV2"),
    ("GET", "/b", {"prefix": ["a/"]}, {}, "ListObjects"),
    ("PUT", "/b", {"notification": [""]}, {}, "PutBucketNotification"),
    ("POST", "/b", {"delete": [""]}, {}, "DeleteObjects"),
    ("GET", "/b/k", {}, {}, "GetObject"),
    ("GET", "/b/k", {"x-id": ["GetObject"]}, {}, "GetObject"),
    ("GET", "/b/k", {"X-Amz-Credential": ["c"], "X-Amz-Signature": ["s"]}, {}, "GetObject"),
    ("GET", "/b/k", {"tagging": [""]}, {}, "GetObjectTagging"),
    ("HEAD", "/b/k", {}, {}, "HeadObject"),
    ("PUT", "/b/k", {}, {}, "PutObject"),
    ("PUT", "/b/k", {}, {"x-amz-copy-source": "/b/j"}, "CopyObject"),
    ("POST", "/b/k", {"uploads": [""]}, {}, "CreateMultipartUpload"),
    ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, {}, "UploadPart"),
    ("POST", "/b/k", {"uploadId": ["u"]}, {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/k", {}, {}, "DeleteObject"),
])
def test_s3_operation_names(method, path, query, headers, expected):
    assert s3_operation(method, path, query, headers) == expected


@pytest.mark.parametrize("path,pattern,expected", [
    ("/dir/a.txt", "/dir", True),
    ("/dir/a.txt", "/dir/", True),
    ("/dirt/a.txt", "/dir", False),
    ("/a/b/c.tmp", "*.tmp", True),
    ("/a/b/c.tmp", "/a/*.tmp", True),
    ("/results/summary1.csv", "/results/summary*.csv", True),
    ("/results/old/x.csv", "/results/summary*.csv", False),
    ("/Dir/a", "/dir", False),
])
def test_datasync_filter_patterns(path, pattern, expected):
    assert _match(path, pattern) is expected


def test_completion_report_quoting_follows_the_user_guide_examples():
    rows = [("@filename.txt", "failed", "X"), ("+filename.txt", "failed", "X"),
            ("file,name.txt", "failed", "X"), ('file"name.txt', "failed", "X")]
    assert completion_report_csv(rows).decode().splitlines() == [
        '"""@filename.txt""",failed,X',
        '"""+filename.txt""",failed,X',
        '"file,name.txt",failed,X',
        '"file""name.txt",failed,X',
    ]
