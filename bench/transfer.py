"""Moving one big body over HTTP with `curl` (streaming, little CPU), or httpx without curl."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import MiB, tool


@dataclass
class Transfer:
    status: int
    size: int
    seconds: float
    body: bytes = b""

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


def post_file(url: str, path: Path, headers: dict[str, str]) -> Transfer:
    """POST a file as a raw body, streamed (never read whole into memory)."""
    size = path.stat().st_size
    curl = tool("curl")
    if curl is not None:
        out = path.with_suffix(".response")
        header_args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
        cmd = [
            curl,
            "-sS",
            "-X",
            "POST",
            "-T",
            str(path),
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            *header_args,
            "-o",
            str(out),
            "-w",
            "%{http_code} %{time_total}",
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        code, seconds = done.stdout.split()
        body = out.read_bytes()
        out.unlink()
        return Transfer(int(code), size, float(seconds), body)

    def chunks():
        with path.open("rb") as f:
            while chunk := f.read(MiB):
                yield chunk

    start = time.perf_counter()
    r = httpx.post(
        url,
        content=chunks(),
        headers={
            **headers,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        },
        timeout=3600,
    )
    return Transfer(r.status_code, size, time.perf_counter() - start, r.content)


def get_to_null(url: str, headers: dict[str, str]) -> Transfer:
    """GET a URL, discarding the body; return status, bytes received and seconds."""
    curl = tool("curl")
    if curl is not None:
        header_args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
        cmd = [
            curl,
            "-sS",
            *header_args,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download} %{time_total}",
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        code, size, seconds = done.stdout.split()
        return Transfer(int(code), int(size), float(seconds))
    start = time.perf_counter()
    received = 0
    with httpx.stream("GET", url, headers=headers, timeout=3600) as r:
        for chunk in r.iter_raw(MiB):
            received += len(chunk)
        status = r.status_code
    return Transfer(status, received, time.perf_counter() - start)


def client_name() -> str:
    return "curl" if tool("curl") else "httpx"
