"""A lean HTTP/1.1 client for webhook deliveries: one POST, keep-alive, no redirects.

With httpx, most of a delivery's CPU went to its connection pool, which looks at every
connection for every request, more so the more requests are in flight (bench/README.md has
the figures). A delivery needs little of it: one POST of a small body to an address
the SSRF guard already resolved, the status, the headers and the first KiB of the answer. So
this client speaks HTTP/1.1 with h11 (the parser under httpx) on asyncio streams, and keeps
idle connections per (scheme, address, port, host) for the next delivery.

The caller bounds the time (`asyncio.timeout`) and how many requests are out at once.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from dataclasses import dataclass

import h11

#: Idle connections kept per destination; more are closed after their answer. As many as the
#: worker has requests out at once (its `concurrency`): a round's deliveries go out
#: together, and connections closed after one round would be opened again in the next.
KEEP_IDLE = 64
#: An answer's body beyond this is not read: the connection is closed instead of reused.
DRAIN_LIMIT = 64 * 1024
_READ = 65536

_Key = tuple[str, str, int, str]


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    head: bytes  # the first `keep` bytes of the body


@dataclass(frozen=True)
class _Post:
    """One request as it travels from `post` to the connection that sends it."""

    host_header: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    keep: int  # bytes of the answer's body to keep


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.answered = False  # an answer began on it (a failure after that is no stale)

    def close(self) -> None:
        self.writer.close()


class StaleConnection(Exception):
    """A kept connection was closed by the other side before answering."""


class Client:
    """POSTs over kept-alive HTTP/1.1 connections (TLS for https)."""

    def __init__(self) -> None:
        self._idle: defaultdict[_Key, list[_Conn]] = defaultdict(list)
        self._tls: ssl.SSLContext | None = None

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
        post = _Post(host_header, target, headers, body, keep)
        while self._idle[key]:
            conn = self._idle[key].pop()
            if conn.reader.at_eof() or conn.writer.is_closing():
                conn.close()
                continue
            try:
                return await self._exchange(key, conn, post)
            except StaleConnection:
                continue  # closed while idle: the request never reached the endpoint
        conn = await self._connect(scheme, address, port, server_name)
        try:
            return await self._exchange(key, conn, post)
        except StaleConnection as exc:
            raise ConnectionError("the endpoint closed the connection without answering") from exc

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

    async def _exchange(self, key: _Key, conn: _Conn, post: _Post) -> Answer:
        reused = conn.h11.our_state is h11.IDLE and conn.h11.their_state is h11.IDLE
        done = False
        try:
            answer = await self._send_and_read(conn, post)
            done = True
            return answer
        except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError) as exc:
            if reused and not conn.answered:
                raise StaleConnection() from exc
            raise
        finally:
            if done and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
                conn.answered = False
                if len(self._idle[key]) < KEEP_IDLE:
                    self._idle[key].append(conn)
                else:
                    conn.close()
            else:
                conn.close()

    async def _send_and_read(self, conn: _Conn, post: _Post) -> Answer:
        h = conn.h11
        body, keep = post.body, post.keep
        request = h11.Request(
            method="POST",
            target=post.target,
            headers=[("host", post.host_header), ("content-length", str(len(body))), *post.headers],
        )
        conn.writer.write(h.send(request) + (h.send(h11.Data(data=body)) or b""))
        conn.writer.write(h.send(h11.EndOfMessage()) or b"")
        await conn.writer.drain()
        response: h11.Response | None = None
        head = b""
        seen = 0
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                data = await conn.reader.read(_READ)
                if not data and response is None:
                    raise ConnectionError("closed before an answer")
                h.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                response = event
                conn.answered = True
            elif isinstance(event, h11.Data):
                seen += len(event.data)
                if len(head) < keep:
                    head += bytes(event.data[: keep - len(head)])
                if seen > DRAIN_LIMIT:
                    break  # the rest is not wanted; the connection closes (not DONE)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if response is None:  # the connection closed before the status line
            raise ConnectionError("closed before an answer")
        return Answer(
            response.status_code,
            {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers},
            head,
        )

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
