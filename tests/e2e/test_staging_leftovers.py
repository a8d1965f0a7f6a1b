"""Staging leftovers of a server killed with SIGKILL are removed when a server starts on the
same data folder, while an upload another running server is receiving there survives."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

pytestmark = pytest.mark.slow

CHUNK = 256 * 1024


class SlowUpload:
    """A raw-body upload that sends `before` bytes, then waits until `finish()`."""

    def __init__(self, url: str, headers: dict[str, str], before: int, after: int) -> None:
        self._go = threading.Event()
        self.digest = hashlib.sha256()
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

        def body() -> Iterator[bytes]:
            for i in range((before + after) // CHUNK):
                if i * CHUNK == before:
                    self._go.wait(timeout=120)
                chunk = i.to_bytes(8, "big") * (CHUNK // 8)
                self.digest.update(chunk)
                yield chunk

        def send() -> None:
            try:
                self.response = httpx.post(
                    url,
                    content=body(),
                    params={"fileName": "slow.bin"},
                    headers=headers | {"Content-Type": "application/octet-stream"},
                    timeout=120,
                )
            except httpx.TransportError as exc:  # the server was killed
                self.error = exc

        self._thread = threading.Thread(target=send, daemon=True)
        self._thread.start()

    def finish(self) -> None:
        self._go.set()
        self._thread.join(timeout=120)


def _staged(staging: Path) -> set[str]:
    return {p.name for p in staging.glob("*.part")}


def _until_staged(staging: Path, count: int) -> set[str]:
    deadline = time.monotonic() + 60
    while len(found := _staged(staging)) < count:
        assert time.monotonic() < deadline, f"only {found} staged"
        time.sleep(0.05)
    return found


def test_start_up_removes_a_killed_servers_staging_files_only(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    headers = {"X-API-Token": token}
    staging = settings.blob_dir / "tmp"
    with running_server(env) as survivor, running_server(env) as victim:
        project = httpx.post(
            f"{survivor.base_url}/api/v1/projects",
            json={"name": "Leftovers", "settings": {"downloadViaApi": True}},
            headers=headers,
        ).json()
        path = f"/api/v1/projects/{project['id']}/documents"
        # Each server receives an upload that stops halfway, in a staging file.
        kept = SlowUpload(survivor.base_url + path, headers, before=3 * 2**20, after=2**20)
        in_flight = _until_staged(staging, 1)
        lost = SlowUpload(victim.base_url + path, headers, before=3 * 2**20, after=2**20)
        leftover = _until_staged(staging, 2) - in_flight

        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait()
        lost.finish()
        assert lost.error is not None and lost.response is None
        assert _staged(staging) == in_flight | leftover  # kill -9 left its file behind

        with running_server(env):  # its start-up sweeps the staging folder
            assert _staged(staging) == in_flight  # the leftover went; the live upload stayed
            kept.finish()
        assert kept.response is not None and kept.response.status_code == 201, kept.response
        document = kept.response.json()
        download = httpx.get(
            f"{survivor.base_url}{path}/{document['id']}/content", headers=headers, timeout=60
        )
        assert hashlib.sha256(download.content).hexdigest() == kept.digest.hexdigest()
    assert _staged(staging) == set()
