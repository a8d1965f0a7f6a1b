"""Acknowledged means durable, also under SIGKILL: a real `casefolio serve` is killed during
concurrent uploads and replaces, several rounds; afterwards every write that was answered 201
is there with its bytes, no version row lacks its blob, and a restart leaves no staging file
behind (the start-up sweep of issue 19 item 6)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import DocumentVersion
from tests.servers import init_token, running_server, server_env

pytestmark = pytest.mark.slow

ROUNDS = 3
WRITERS = 6
ACKS_PER_ROUND = 12  # the kill comes once this many writes of the round were acknowledged
SIZES = (700, 200 * 1024, 1536 * 1024)  # held in memory, staged, staged in several batches


@dataclass
class Ledger:
    """What the clients were told, shared by the writer threads of one run."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[int, tuple[int, str]] = field(default_factory=dict)  # version -> document, sha
    documents: list[int] = field(default_factory=list)
    round_acks: int = 0
    enough: threading.Event = field(default_factory=threading.Event)
    problems: list[str] = field(default_factory=list)  # 5xx answers, wrong digests

    def ack(self, document: dict[str, object], sha: str) -> None:
        version = document["currentVersion"]
        assert isinstance(version, dict)
        if version["sha256"] != sha:  # the server must have hashed what was sent
            self.problems.append(f"version {version['id']}: {version['sha256']} != {sha}")
        document_id = int(str(document["id"]))
        with self.lock:
            self.acked[int(version["id"])] = (document_id, sha)
            self.documents.append(document_id)
            self.round_acks += 1
            if self.round_acks >= ACKS_PER_ROUND:
                self.enough.set()


def _writer(
    base: str, path: str, token: str, ledger: Ledger, seed: int, stop: threading.Event
) -> None:
    rng = random.Random(seed)
    headers = {"X-API-Token": token}
    count = 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while not stop.is_set():
            count += 1
            body = f"{seed}:{count}:".encode() + rng.randbytes(rng.choice(SIZES))
            sha = hashlib.sha256(body).hexdigest()
            with ledger.lock:
                target = rng.choice(ledger.documents) if ledger.documents else None
            url = f"{path}/{target}/replace" if target and rng.random() < 0.5 else path
            try:
                if rng.random() < 0.5:
                    response = client.post(url, files={"file": ("f.bin", body)})
                else:
                    response = client.post(
                        url,
                        content=body,
                        params={"fileName": "f.bin"},
                        headers={"Content-Type": "application/octet-stream"},
                    )
            except httpx.TransportError:
                return  # the server was killed
            if response.status_code == 201:
                ledger.ack(response.json(), sha)
            elif response.status_code >= 500 and response.status_code != 503:
                ledger.problems.append(f"{response.status_code} {url}: {response.text}")


def _stall_upload(base: str, path: str, token: str) -> socket.socket:
    """Start a raw upload that sends 3 MiB of a 10 MB body and then nothing more."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        f"POST {path}?fileName=stalled.bin HTTP/1.1\r\nHost: {host}\r\nX-API-Token: {token}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n".encode()
        + b"s" * 3 * 2**20
    )
    return sock


def _staged(staging: Path) -> set[str]:
    return {p.name for p in staging.glob("*.part")}


def _until(condition: object, what: str, timeout: float = 90) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


async def _versions(settings: Settings) -> list[tuple[int, str, int]]:
    db = Database.open(settings)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(DocumentVersion.id, DocumentVersion.sha256, DocumentVersion.size)
            )
            return [(row.id, row.sha256, row.size) for row in rows]
    finally:
        await db.close()


def test_acknowledged_writes_survive_sigkill_during_uploads(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(
        settings.data_dir, settings.effective_database_url, rate_limit_per_minute="1000000"
    )
    token = init_token(env)
    headers = {"X-API-Token": token}
    staging = settings.blob_dir / "tmp"
    ledger = Ledger()
    path = ""
    for round_no in range(ROUNDS):
        with running_server(env) as server:
            assert _staged(staging) == set()  # the previous round's leftovers went at start-up
            if not path:
                project = httpx.post(
                    f"{server.base_url}/api/v1/projects",
                    json={"name": "Crash", "settings": {"downloadViaApi": True}},
                    headers=headers,
                ).json()
                path = f"/api/v1/projects/{project['id']}/documents"
            # One upload that will certainly be cut by the kill, with its bytes staged.
            stalled = _stall_upload(server.base_url, path, token)
            _until(lambda: len(_staged(staging)) == 1, "the stalled upload to be staged")
            [leftover] = _staged(staging)
            ledger.round_acks, stop = 0, threading.Event()
            ledger.enough.clear()
            writers = [
                threading.Thread(
                    target=_writer,
                    args=(server.base_url, path, token, ledger, round_no * 100 + i, stop),
                )
                for i in range(WRITERS)
            ]
            for writer in writers:
                writer.start()
            assert ledger.enough.wait(timeout=120), "writes were not acknowledged"
            os.kill(server.pid, signal.SIGKILL)  # mid-traffic: the writers are still sending
            server.process.wait()
            stop.set()
            for writer in writers:
                writer.join(timeout=120)
            stalled.close()
            assert leftover in _staged(staging)  # kill -9 left the staged upload behind

    assert ledger.problems == []
    with running_server(env) as server:
        assert _staged(staging) == set()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            for version_id, (document_id, sha) in sorted(ledger.acked.items()):
                content = client.get(f"{path}/{document_id}/versions/{version_id}/content")
                assert content.status_code == 200, f"acknowledged version {version_id} is gone"
                assert hashlib.sha256(content.content).hexdigest() == sha
    # No version row without its bytes, acknowledged or not (a row commits after its blob).
    rows = anyio.run(_versions, settings)
    assert len(rows) >= len(ledger.acked) >= ROUNDS * ACKS_PER_ROUND
    for version_id, sha, size in rows:
        blob = settings.blob_dir / sha[:2] / sha[2:4] / sha
        assert blob.is_file(), f"version {version_id} has no blob"
        assert blob.stat().st_size == size
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == sha
