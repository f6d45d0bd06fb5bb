"""The HTTP file server of the test harness serves, counts and omits headers as told."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from etl_manifests.testing import FileServer


def _open(url: str, method: str = "GET") -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), dict(response.headers)


def test_serves_files_and_counts_requests(file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    assert _open(url)[0] == b"abc"
    _open(url, "HEAD")
    _open(url, "HEAD")
    assert (file_server.requests("GET", "a.csv"), file_server.requests("HEAD", "a.csv")) == (1, 2)


def test_sends_etag_and_last_modified_unless_turned_off(file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    headers = _open(url, "HEAD")[1]
    assert {"ETag", "Last-Modified"} <= set(headers)
    assert headers["Content-Length"] == "3"
    file_server.etag = file_server.last_modified = False
    assert not {"ETag", "Last-Modified"} & set(_open(url, "HEAD")[1])


def test_head_can_announce_another_length(file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    file_server.head_lengths["a.csv"] = 10
    assert _open(url, "HEAD")[1]["Content-Length"] == "10"
    assert _open(url)[0] == b"abc"


def test_unknown_names_are_404(file_server: FileServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _open(file_server.url("nope"))
    assert info.value.code == 404
