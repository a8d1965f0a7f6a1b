"""Sequential writes: one keep-alive client, 4 KiB uploads and folder creates one at a time.

Most integrations upload one document after another; a single caller shares no group commit
with anybody, so it sees every wait of the write path. The client is a plain socket sending
each request in one write and reading the answer by its Content-Length (tens of µs per
request, so the numbers are the server's). The reference does, on the same disk and in the
same run, the durable minimum for one document: write + fsync + rename + directory fsync of
the 4 KiB, then one fsync'd append of a ~300-byte record (the database's log). Casefolio and
the reference run in alternating blocks, so a disk that slows down meanwhile slows both.
Target: documents (folders) per second >= 0.35x the reference's operations per second.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    HOST,
    Api,
    Options,
    Result,
    casefolio_server,
    instance,
    log,
    median,
    percentile,
)

NAME = "sequential_writes"
TARGET = 0.35
SIZE = 4096
RECORD = 300
BLOCK = 100  # operations per alternating block
WARMUP = 20


class RawClient:
    """HTTP/1.1 over one keep-alive socket: a request in one write, the answer by length."""

    def __init__(self, port: int, token: str) -> None:
        self._sock = socket.create_connection((HOST, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._token = token
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def request(self, method: str, target: str, body: bytes, content_type: str) -> bytes:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Token: {self._token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._sock.sendall(head.encode() + body)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(self._buffer) < end + 4 + length:
            self._receive()
        answer = self._buffer[end + 4 : end + 4 + length]
        self._buffer = self._buffer[end + 4 + length :]
        if status >= 300:
            raise RuntimeError(f"{method} {target} answered {status}: {answer[:300]!r}")
        return answer

    def _receive(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        self._buffer += data


class DurableMinimum:
    """The reference: per operation, a 4 KiB file made durable under its final name, plus
    one fsync'd append to a log, all in this thread."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self._directory = directory
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        self._log = os.open(directory / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._count = 0

    def close(self) -> None:
        os.close(self._log)
        os.close(self._dir_fd)

    def __call__(self, data: bytes) -> None:
        self._count += 1
        staged = self._directory / f"{self._count}.part"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(staged, self._directory / f"{self._count}.blob")
        os.fsync(self._dir_fd)
        os.write(self._log, data[:RECORD])
        os.fsync(self._log)


def _timed(operation: Callable[[int], None], start: int, count: int) -> list[float]:
    latencies = []
    for i in range(start, start + count):
        began = time.perf_counter()
        operation(i)
        latencies.append(time.perf_counter() - began)
    return latencies


def _summary(latencies: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in latencies]
    return {
        "per_second": len(latencies) / sum(latencies),
        "p50_ms": median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


def run(opts: Options, workdir: Path, result: Result) -> None:
    n = 200 if opts.quick else 2000
    result.params.update(operations=n, size=SIZE, record=RECORD, block=BLOCK)
    with (
        instance(opts, workdir, NAME) as inst,
        casefolio_server(inst, log_level=opts.log_level) as srv,
    ):
        with Api(srv.base, inst.token) as api:
            project = api.create_project("sequential writes")
        client = RawClient(srv.port, inst.token)
        # The reference writes where casefolio keeps its blobs and database: the same disk.
        reference = DurableMinimum(inst.data_dir / "reference")
        run_id = time.time_ns()

        def upload(i: int) -> None:
            body = os.urandom(SIZE)  # distinct bytes: every upload is a new blob
            client.request(
                "POST",
                f"/api/v1/projects/{project}/documents?fileName=seq-{i}.bin",
                body,
                "application/octet-stream",
            )

        def folder(i: int) -> None:
            body = json.dumps({"name": f"seq-{run_id}-{i}"}).encode()
            client.request("POST", f"/api/v1/projects/{project}/folders", body, "application/json")

        def durable(i: int) -> None:
            reference(os.urandom(SIZE))

        kinds: dict[str, Callable[[int], None]] = {
            "reference": durable,
            "upload": upload,
            "folder": folder,
        }
        latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
        try:
            for operation in kinds.values():
                _timed(operation, -WARMUP, WARMUP)
            log(f"{n:,} of each, alternating blocks of {BLOCK}: reference, upload, folder")
            for start in range(0, n, BLOCK):
                count = min(BLOCK, n - start)
                for kind, operation in kinds.items():
                    latencies[kind] += _timed(operation, start, count)
        finally:
            client.close()
            reference.close()
    stats = {kind: _summary(values) for kind, values in latencies.items()}
    result.details.update(stats)
    ref = stats["reference"]
    log(
        f"reference {ref['per_second']:,.0f}/s (p50 {ref['p50_ms']:.2f} ms, "
        f"p99 {ref['p99_ms']:.2f} ms)"
    )
    for kind, label in (("upload", "4 KiB uploads"), ("folder", "folder creates")):
        mine = stats[kind]
        log(
            f"{kind}: {mine['per_second']:,.0f}/s, p50 {mine['p50_ms']:.2f} ms, "
            f"p99 {mine['p99_ms']:.2f} ms ({mine['per_second'] / ref['per_second']:.2f}x)"
        )
        result.add(
            f"{label}, one client",
            mine["per_second"],
            "/s",
            reference=ref["per_second"],
            reference_label="durable minimum",
            target=TARGET,
        )
        result.add(
            f"{label} p50 / p99",
            mine["p50_ms"],
            "ms",
            reference=ref["p50_ms"],
            reference_label="reference p50",
            higher_is_better=False,
            note=f"p99 {mine['p99_ms']:.2f} ms (reference {ref['p99_ms']:.2f} ms)",
        )
