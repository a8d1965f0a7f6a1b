"""What a real `casefolio serve` writes to its log: a client that hangs up mid-upload is one
info line (no traceback), and no credential (header, query parameter, CSRF token or
set-password link) is ever written."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from casefolio.config import Settings
from tests.servers import cli, init_token, running_server, server_env

pytestmark = pytest.mark.slow


def _until(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def _hang_up_mid_upload(
    base_url: str, path: str, token: str, staging: Path, multipart: bool
) -> None:
    """Send the headers and 3 MiB of a 10 MB body, wait until the server is writing it to a
    staging file, then close the connection."""
    host, port = base_url.removeprefix("http://").split(":")
    content_type = "multipart/form-data; boundary=B" if multipart else "application/octet-stream"
    head = (
        f"POST {path}?fileName=cut.bin HTTP/1.1\r\nHost: {host}\r\n"
        f"X-API-Token: {token}\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 10000000\r\n\r\n"
    )
    part = b'--B\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n'
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + (part if multipart else b"") + b"x" * 3 * 2**20)
        _until(lambda: any(staging.glob("*.part")), "the server to stage the upload")
    _until(lambda: not any(staging.glob("*.part")), "the server to discard the upload")


def _use_page_secrets(base_url: str, project_id: str, password: str) -> list[str]:
    """Sign in to the pages, invite someone and open their set-password link, upload with the
    plain form's `?csrf=`; return the secrets those URLs carried."""
    origin = {"Origin": base_url}
    with httpx.Client(base_url=base_url, headers=origin) as web:
        signed_in = web.post("/signin", data={"email": "op@example.com", "password": password})
        assert signed_in.status_code == 303, signed_in.text
        page = web.get("/admin/users").text
        csrf = re.findall(r'<meta name="csrf-token" content="([^"]+)"', page)[0]
        invite = {"csrf": csrf, "email": "i@example.com", "name": "I"}
        invited = web.post("/admin/users", data=invite)
        [link] = re.findall(r"/set-password/([A-Za-z0-9_-]+)", invited.text)
        assert web.get(f"/set-password/{link}").status_code == 200
        uploaded = web.post(
            f"/projects/{project_id}/upload?csrf={csrf}", files={"file": ("a.txt", b"a")}
        )
        assert uploaded.status_code in (200, 303), uploaded.text
    return [link, csrf]


def test_log_has_one_line_per_hang_up_and_no_credentials(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    password = "a password for the pages"
    cli(env, "users", "set-password", "op@example.com", "--password-stdin", input=password)
    staging = settings.blob_dir / "tmp"
    secrets = {
        "token": "cf_query_token_1",
        "X-Api-Key": "key_2",
        "client_secret": "secret_3",
        "Password": "password_4",
        "apikey": "apikey_5",
        "X-Amz-Signature": "signature_6",
    }
    with running_server(env) as server:
        project = httpx.post(
            f"{server.base_url}/api/v1/projects",
            json={"name": "Logs"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        documents = f"/api/v1/projects/{project['id']}/documents"
        page_secrets = _use_page_secrets(server.base_url, project["id"], password)
        for multipart in (False, True):
            _hang_up_mid_upload(server.base_url, documents, token, staging, multipart)
        listed = httpx.get(
            f"{server.base_url}{documents}",
            params={**secrets, "limit": "5"},
            headers={"X-API-Token": token},
        )
        assert listed.status_code == 200, listed.text
        refused = httpx.get(
            f"{server.base_url}/api/v1/projects", headers={"X-API-Token": "cf_wrong_header_7"}
        )
        assert refused.status_code == 401
        _until(lambda: "limit=5" in server.log.read_text(), "the access log line")
        log = server.log.read_text()

    hang_ups = [line for line in log.splitlines() if "client disconnected" in line]
    assert hang_ups == [f"INFO:     client disconnected during POST {documents}"] * 2, log
    for noise in ("Traceback", "unhandled error", "Exception in ASGI application", "ERROR"):
        assert noise not in log, log
    [line] = [line for line in log.splitlines() if "limit=5" in line]
    for name in secrets:
        assert f"{name}=[redacted]" in line
    assert "GET /set-password/[redacted] HTTP/1.1" in log, log
    assert "upload?csrf=[redacted] HTTP/1.1" in log, log
    for secret in [*secrets.values(), *page_secrets, token, "cf_wrong_header_7"]:
        assert secret not in log, f"{secret} leaked into the log:\n{log}"
    # Nothing of the cut uploads stays behind.
    assert not any(staging.glob("*.part"))
