"""A lean HTTP/1.1 client for webhook deliveries: one POST, keep-alive, no redirects.

With httpx, most of a delivery's CPU went to its connection pool, which looks at every
connection for every request, more so the more requests are in flight (bench/README.md has
the figures). A delivery needs little of it: one POST of a small body to an address
the SSRF guard already resolved, the status, the headers and the first KiB of the answer. So
this client writes its own request (every name and value in it is casefolio's; the Host and
the target come from the webhook's URL and are checked here, as a general client would),
parses the answer with httptools (llhttp, the C parser uvicorn uses) on asyncio streams, and
keeps idle connections per (scheme, address, port, host) for the next delivery.

The caller bounds the time (`asyncio.timeout`) and how many requests are out at once.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import httptools

#: Idle connections kept per destination; more are closed after their answer. As many as the
#: worker has requests out at once (its `concurrency`): a round's deliveries go out
#: together, and connections closed after one round would be opened again in the next.
KEEP_IDLE = 64
#: A kept connection idle longer than this is closed (the endpoint has most likely closed its
#: end by then): kept only for their destination's next request, connections to endpoints
#: sent to no more (a webhook gone, an address DNS no longer gives) held their sockets for
#: as long as the process ran, up to KEEP_IDLE per destination.
IDLE_SECONDS = 30.0
#: An answer's body beyond this is not read: the connection is closed instead of reused.
DRAIN_LIMIT = 64 * 1024
#: An answer's status line and headers may not be longer than this.
HEAD_LIMIT = 64 * 1024
_READ = 65536

_Key = tuple[str, str, int, str]

# RFC 9110/9112, as h11 checks them: a target is visible ASCII; a field name a token; a
# field value visible characters (or obs-text) with single spaces or tabs between them.
REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")
_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE = re.compile(r"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
#: Checked request lines and Host headers, by (host, target): a worker sends to few URLs.
_LINES_KEPT = 1024


class ProtocolError(Exception):
    """The answer is not HTTP/1.1 this client accepts, or the request could not be written."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    head: bytes  # the first `keep` bytes of the body


@dataclass(frozen=True)
class _Post:
    """One request as it travels from `post` to the connection that sends it."""

    start: bytes  # request line and Host header, checked
    headers: list[tuple[str, str]]
    body: bytes
    keep: int  # bytes of the answer's body to keep


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.answered = False  # an answer began on it (a failure after that is no stale)
        self.idle_since = 0.0  # when it was last kept (the client's clock)


class _Reading:
    """httptools' callbacks for one answer: the final status's headers and body excerpt
    (informational answers before it are skipped)."""

    __slots__ = ("after", "complete", "final", "head", "headers", "keep", "parser", "seen")

    def __init__(self, keep: int) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.keep = keep
        self.headers: dict[str, str] = {}
        self.head = b""
        self.seen = 0
        self.final = False  # the final answer's head has been read (not a 1xx)
        self.complete = False
        self.after = False  # bytes followed the answer: the connection is not reused

    def on_message_begin(self) -> None:
        if self.complete:
            self.after = True
        else:
            self.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("ascii").lower()] = value.decode("latin-1").strip(" \t")

    def on_headers_complete(self) -> None:
        if not self.complete and not 100 <= self.parser.get_status_code() < 200:
            self.final = True

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.seen += len(body)
            if len(self.head) < self.keep:
                self.head += body[: self.keep - len(self.head)]

    def on_message_complete(self) -> None:
        if self.final:
            self.complete = True


class StaleConnection(Exception):
    """A kept connection was closed by the other side before answering."""


def _start(host_header: str, target: str) -> bytes:
    if not REQUEST_TARGET.fullmatch(target):
        raise ProtocolError("the URL's path or query has characters a request target cannot")
    if not _VALUE.fullmatch(host_header) or not host_header:
        raise ProtocolError("the URL's host has characters a Host header cannot")
    return b"POST %s HTTP/1.1\r\nhost: %s\r\n" % (
        target.encode("ascii"),
        host_header.encode("ascii"),
    )


def _fields(headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [b"content-length: %d\r\n" % length]
    for name, value in headers:
        if not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise ProtocolError(f"the header {name!r} cannot be sent")
        lines.append(b"%s: %s\r\n" % (name.encode("ascii"), value.encode("ascii")))
    lines.append(b"\r\n")
    return b"".join(lines)


class Client:
    """POSTs over kept-alive HTTP/1.1 connections (TLS for https)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle: defaultdict[_Key, list[_Conn]] = defaultdict(list)
        self._tls: ssl.SSLContext | None = None
        self._starts: dict[tuple[str, str], bytes] = {}
        self._clock = clock
        self._swept = clock()

    async def post(
        self,
        *,
        scheme: str,
        address: str,
        port: int,
        host_header: str,
        server_name: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        keep: int,
    ) -> Answer:
        """POST `body` to `address:port` (TLS to `server_name` for https); return the status,
        the headers and the first `keep` bytes of the answer's body. Redirects are answers
        like any other."""
        key = (scheme, address, port, server_name)
        start = self._starts.get((host_header, target))
        if start is None:
            start = _start(host_header, target)
            if len(self._starts) >= _LINES_KEPT:
                self._starts.clear()
            self._starts[(host_header, target)] = start
        post = _Post(start, headers, body, keep)
        self._sweep()
        while self._idle.get(key):
            conn = self._idle[key].pop()
            if conn.reader.at_eof() or conn.writer.is_closing():
                conn.writer.close()
                continue
            try:
                return await self._exchange(key, conn, post, reused=True)
            except StaleConnection:
                continue  # closed while idle: the request never reached the endpoint
        conn = await self._connect(scheme, address, port, server_name)
        try:
            return await self._exchange(key, conn, post, reused=False)
        except StaleConnection as exc:
            raise ConnectionError("the endpoint closed the connection without answering") from exc

    def _sweep(self) -> None:
        """Close the connections idle past IDLE_SECONDS (looked for at most twice in that
        time), and forget destinations with none left."""
        now = self._clock()
        if now - self._swept < IDLE_SECONDS / 2:
            return
        self._swept = now
        for key, conns in list(self._idle.items()):
            kept = [conn for conn in conns if now - conn.idle_since <= IDLE_SECONDS]
            for conn in conns:
                if now - conn.idle_since > IDLE_SECONDS:
                    conn.writer.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    async def _connect(self, scheme: str, address: str, port: int, server_name: str) -> _Conn:
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        reader, writer = await asyncio.open_connection(
            address, port, ssl=tls, server_hostname=server_name if tls else None, limit=_READ
        )
        return _Conn(reader, writer)

    async def _exchange(self, key: _Key, conn: _Conn, post: _Post, *, reused: bool) -> Answer:
        clean = False
        try:
            answer, clean = await self._send_and_read(conn, post)
            return answer
        except (ConnectionError, httptools.HttpParserError) as exc:
            if reused and not conn.answered:
                raise StaleConnection() from exc
            raise
        finally:
            if clean and len(self._idle[key]) < KEEP_IDLE:
                conn.answered = False
                conn.idle_since = self._clock()
                self._idle[key].append(conn)
            else:
                conn.writer.close()

    async def _send_and_read(self, conn: _Conn, post: _Post) -> tuple[Answer, bool]:
        """The answer, and whether the connection may carry the next request."""
        body = post.body
        conn.writer.write(post.start + _fields(post.headers, len(body)) + body)
        await conn.writer.drain()
        reading = _Reading(post.keep)
        parser = reading.parser
        received = 0
        while True:
            data = await conn.reader.read(_READ)
            if not data:
                if reading.final and _until_close(reading.headers):
                    return _answer(reading), False  # the body ends with the connection
                raise ConnectionError("closed before the whole answer")
            conn.answered = True
            received += len(data)
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                raise ProtocolError("the endpoint switched protocols") from exc
            if reading.complete:
                clean = (
                    not reading.after
                    and parser.should_keep_alive()
                    and parser.get_http_version() == "1.1"
                )
                return _answer(reading), clean
            if not reading.final and received > HEAD_LIMIT:
                raise ProtocolError("the answer's headers are too long")
            if reading.seen > DRAIN_LIMIT:
                return _answer(reading), False  # the rest is not wanted; the connection closes

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.writer.close()
        self._idle.clear()


def _until_close(headers: dict[str, str]) -> bool:
    return "content-length" not in headers and "transfer-encoding" not in headers


def _answer(reading: _Reading) -> Answer:
    return Answer(reading.parser.get_status_code(), reading.headers, reading.head)
