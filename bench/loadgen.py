"""A small, fast HTTP/1.1 load generator (keep-alive, asyncio streams), run as its own process.

Used for concurrent uploads (ingest) and, when `wrk` is not installed, for GET load. It
speaks just enough HTTP/1.1 for casefolio's answers (Content-Length or chunked bodies) and
costs far less CPU per request than a general client, which matters on a 2-core machine
where client and server share the cores.

    python -m bench.loadgen get URL --connections 16 --duration 10 -H 'X-API-Token: t'
    python -m bench.loadgen post URL --count 10000 --size 4096 --connections 16 -H ...

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    non2xx: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str = ""


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.writer.write(body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        chunked = False
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(parts)
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, data


def _head(method: str, target: str, host: str, headers: list[str], length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _get_worker(
    conn: Connection, head: bytes, stop_at: float, record_from: float, stats: Stats
) -> None:
    while True:
        start = time.perf_counter()
        if start >= stop_at:
            break
        try:
            status, _ = await conn.request(head)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            stats.errors += 1
            stats.first_error = stats.first_error or repr(exc)
            await conn.close()
            continue
        end = time.perf_counter()
        if start < record_from:
            continue  # warm-up
        stats.latencies.append(end - start)
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            stats.ok += 1
        else:
            stats.non2xx += 1


async def run_get(url: str, headers: list[str], connections: int, duration: float, warmup: float):
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = _head("GET", target, parts.netloc, headers, None)
    stats = Stats()
    conns = [
        Connection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(connections)
    ]
    begin = time.perf_counter()
    record_from = begin + warmup
    stop_at = record_from + duration
    await asyncio.gather(*(_get_worker(c, head, stop_at, record_from, stats) for c in conns))
    elapsed = time.perf_counter() - record_from
    for c in conns:
        await c.close()
    return _summary(stats, elapsed)


async def run_post(
    url: str,
    headers: list[str],
    connections: int,
    count: int,
    size: int,
    name_prefix: str,
    max_seconds: float | None = None,
):
    parts = urlsplit(url)
    sep = "&" if parts.query else "?"
    base_target = parts.path + (f"?{parts.query}" if parts.query else "")
    stats = Stats()
    # Distinct bodies, so that content-addressed storage really writes every blob.
    seed = os.urandom(size)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    async def worker(conn: Connection) -> None:
        while deadline is None or time.perf_counter() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = i.to_bytes(8, "big") + seed[8:]
            target = f"{base_target}{sep}fileName={name_prefix}{i:07d}.bin"
            head = _head("POST", target, parts.netloc, headers, len(body))
            start = time.perf_counter()
            try:
                status, data = await conn.request(head, body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or repr(exc)
                await conn.close()
                continue
            stats.latencies.append(time.perf_counter() - start)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                stats.ok += 1
            else:
                stats.non2xx += 1
                if not stats.first_error:
                    stats.first_error = f"HTTP {status}: {data[:300]!r}"

    conns = [
        Connection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(connections)
    ]
    begin = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - begin
    for c in conns:
        await c.close()
    out = _summary(stats, elapsed)
    out["stopped_early"] = queue.qsize() > 0
    return out


def _pct(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k] * 1000


def _summary(stats: Stats, elapsed: float) -> dict[str, object]:
    total = stats.ok + stats.non2xx
    return {
        "requests": total,
        "ok": stats.ok,
        "non2xx": stats.non2xx,
        "errors": stats.errors,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "seconds": elapsed,
        "rps": total / elapsed if elapsed > 0 else 0.0,
        "ok_per_s": stats.ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _pct(stats.latencies, 50),
        "p99_ms": _pct(stats.latencies, 99),
        "first_error": stats.first_error,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("mode", choices=["get", "post"])
    parser.add_argument("url")
    parser.add_argument("-H", "--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--name-prefix", default="doc")
    parser.add_argument(
        "--max-seconds", type=float, help="post: stop sending new requests after this long"
    )
    args = parser.parse_args(argv)
    runner = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except (ImportError, AttributeError):
        pass
    if args.mode == "get":
        out = runner(run_get(args.url, args.header, args.connections, args.duration, args.warmup))
    else:
        headers = [*args.header, "Content-Type: application/octet-stream"]
        out = runner(
            run_post(
                args.url,
                headers,
                args.connections,
                args.count,
                args.size,
                args.name_prefix,
                args.max_seconds,
            )
        )
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
