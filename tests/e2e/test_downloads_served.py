"""Downloads through a real `casefolio serve` (uvicorn, which reads files in chunks rather
than sending them zero-copy): the bytes at every chunk edge, whole and by range, and a
client that hangs up mid-download leaves no file open and nothing in the log."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from pathlib import Path

import httpx
import pytest

from casefolio.api.downloads import FILE_CHUNK_BYTES
from casefolio.config import Settings
from tests.servers import Server, init_token, running_server, server_env

pytestmark = pytest.mark.slow


def _open_blobs(pid: int, bodies: list[bytes]) -> list[str]:
    """The process's descriptors open on the stored blobs of these bodies."""
    names = {hashlib.sha256(body).hexdigest() for body in bodies}
    opened = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed while we looked
            continue
        if Path(target).name in names:
            opened.append(target)
    return opened


def _upload(server: Server, token: str, project: str, body: bytes) -> str:
    answer = httpx.post(
        f"{server.base_url}/api/v1/projects/{project}/documents",
        params={"fileName": "exhibit.bin"},
        content=body,
        headers={"X-API-Token": token, "Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _hang_up_after(server: Server, path: str, token: str, received: int) -> None:
    """Ask for `path`, read `received` bytes of the answer, and close the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Token: {token}\r\n\r\n"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request.encode())
        got = 0
        while got < received:
            data = sock.recv(65536)
            assert data, "the server closed the connection first"
            got += len(data)


def test_bytes_at_chunk_edges_and_a_hang_up_mid_download(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    randomness = random.Random(7)
    uneven = randomness.randbytes(2 * FILE_CHUNK_BYTES + 12_345)
    even = randomness.randbytes(2 * FILE_CHUNK_BYTES)
    with running_server(env) as server:
        headers = {"X-API-Token": token}
        project = httpx.post(
            f"{server.base_url}/api/v1/projects",
            json={"name": "Downloads", "settings": {"downloadViaApi": True}},
            headers=headers,
        ).json()["id"]
        for body in (uneven, even):
            document = _upload(server, token, project, body)
            content = f"{server.base_url}/api/v1/projects/{project}/documents/{document}/content"
            whole = httpx.get(content, headers=headers, timeout=60)
            assert whole.status_code == 200
            assert hashlib.sha256(whole.content).digest() == hashlib.sha256(body).digest()
            for first, last in [
                (FILE_CHUNK_BYTES - 3, FILE_CHUNK_BYTES + 2),  # across the first edge
                (1, 2 * FILE_CHUNK_BYTES - 1),  # two chunks' worth, off by one
                (2 * FILE_CHUNK_BYTES - 10, len(body) - 1),  # the tail
            ]:
                part = httpx.get(
                    content, headers=headers | {"Range": f"bytes={first}-{last}"}, timeout=60
                )
                assert part.status_code == 206
                assert part.headers["content-range"] == f"bytes {first}-{last}/{len(body)}"
                assert part.content == body[first : last + 1]

        path = f"/api/v1/projects/{project}/documents/{document}/content"
        for _ in range(3):
            _hang_up_after(server, path, token, FILE_CHUNK_BYTES // 2)
        deadline = time.monotonic() + 30
        while _open_blobs(server.pid, [uneven, even]):
            assert time.monotonic() < deadline, _open_blobs(server.pid, [uneven, even])
            time.sleep(0.05)
        # Still serving, and the hang-ups wrote nothing alarming.
        again = httpx.get(f"{server.base_url}{path}", headers=headers, timeout=60)
        assert again.content == even
        log = server.log.read_text()
    for noise in ("Traceback", "Exception in ASGI application", "ERROR"):
        assert noise not in log, log
