"""Requests the HTTP parser refuses before the application sees them (bytes that are not
HTTP/1.1, a control character in a header, a URL past httptools' limit) get a problem
document like any other refusal, on a real `casefolio serve`, and change nothing."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from casefolio.cli.http_protocol import MAX_URL_BYTES
from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

pytestmark = pytest.mark.slow


def _exchange(base_url: str, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status line, headers, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {
        name.decode().lower(): value.decode().strip()
        for name, _, value in (line.partition(b":") for line in lines)
    }
    return status, headers, body


def test_an_unparsable_request_gets_a_problem_and_changes_nothing(
    settings: Settings,
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    with running_server(env) as server:
        listed = f"{server.base_url}/api/v1/projects"
        before = httpx.get(listed, headers={"X-API-Token": token}).json()
        body = b'{"name": "Never made"}'
        target = b"/api/v1/projects?pad="
        refused = [
            # A URL one byte past the limit, on a create.
            b"POST " + target + b"a" * (MAX_URL_BYTES + 1 - len(target)) + b" HTTP/1.1\r\n",
            # A control character in a header value.
            b"POST /api/v1/projects HTTP/1.1\r\nX-Note: a\x01b\r\n",
            # Not HTTP at all.
            b"POST /api/v1/projects HTTX/9.9\r\n",
        ]
        for start in refused:
            request = (
                start
                + f"Host: x\r\nX-API-Token: {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, headers, answer = _exchange(server.base_url, request)
            assert status == b"HTTP/1.1 400 Bad Request", (start[:40], status, answer)
            assert headers["content-type"] == "application/problem+json"
            assert headers["connection"] == "close"
            problem = json.loads(answer)
            assert problem["status"] == 400
            assert f"longer than {MAX_URL_BYTES:,} bytes" in problem["detail"]
        after = httpx.get(listed, headers={"X-API-Token": token}).json()
    assert after == before


def test_a_url_at_the_limit_reaches_the_application(settings: Settings) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    with running_server(env) as server:
        target = b"/api/v1/projects?pad="
        request = (
            b"GET "
            + target
            + b"a" * (MAX_URL_BYTES - len(target))
            + b" HTTP/1.1\r\n"
            + f"Host: x\r\nX-API-Token: {token}\r\nConnection: close\r\n\r\n".encode()
        )
        status, headers, answer = _exchange(server.base_url, request)
    assert status == b"HTTP/1.1 200 OK", answer[:300]
    assert headers["content-type"] == "application/json"
