"""The deliveries' HTTP/1.1 client against a real socket server: keep-alive, connections the
endpoint dropped while idle, long answers, redirects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from casefolio.outbound import http1
from tests.clocks import Seconds


@dataclass
class Endpoint:
    port: int
    connections: int = 0
    bodies: list[bytes] = field(default_factory=list)
    closed: int = 0  # connections the client closed (or that failed)
    closing: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def endpoint(answer: bytes, *, close_after_answer: bool = False) -> AsyncIterator[Endpoint]:
    """A keep-alive HTTP/1.1 server giving `answer` to each request; with
    `close_after_answer` it drops the connection afterwards without saying so."""
    state = Endpoint(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                state.bodies.append(await reader.readexactly(length))
                writer.write(answer)
                await writer.drain()
                if close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            if not close_after_answer:
                state.closed += 1
                state.closing.set()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


async def _post(client: http1.Client, port: int, body: bytes = b"{}") -> http1.Answer:
    return await client.post(
        scheme="http",
        address="127.0.0.1",
        port=port,
        host_header=f"hooks.example:{port}",
        server_name="hooks.example",
        target="/in?x=1",
        headers=[("webhook-id", "msg_1")],
        body=body,
        keep=1024,
    )


async def test_connections_are_kept_alive_and_a_dropped_one_is_replaced() -> None:
    ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
    client = http1.Client()
    try:
        async with endpoint(ok) as kept:
            for n in range(3):
                assert (await _post(client, kept.port, b'{"n":%d}' % n)).status_code == 204
            assert kept.connections == 1
            assert kept.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        async with endpoint(ok, close_after_answer=True) as dropping:
            for _ in range(3):
                await asyncio.sleep(0)  # let the close arrive, as an idle timeout would
                assert (await _post(client, dropping.port)).status_code == 204
            assert dropping.connections == 3 and len(dropping.bodies) == 3
    finally:
        await client.aclose()


async def test_a_long_answer_is_cut_to_the_excerpt_and_a_redirect_is_only_an_answer() -> None:
    long_body = b"x" * 200_000
    client = http1.Client()
    try:
        answer = (
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nretry-after: 3\r\n\r\n" % len(long_body)
            + long_body
        )
        async with endpoint(answer) as long:
            got = await _post(client, long.port)
            assert got.status_code == 200 and got.head == b"x" * 1024
            assert got.headers["retry-after"] == "3"
            again = await _post(client, long.port)  # a fresh connection: the last was not read
            assert again.status_code == 200 and long.connections == 2
        moved = (
            b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n"
        )
        async with endpoint(moved) as redirecting:
            assert (await _post(client, redirecting.port)).status_code == 302
            assert len(redirecting.bodies) == 1
    finally:
        await client.aclose()


async def test_an_informational_answer_is_skipped_and_a_closing_answer_is_not_reused() -> None:
    # A 100 Continue and the final answer in one write, the final one chunked and asking to
    # close: the status is the final one's, its body is read whole, the next POST reconnects.
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nconnection: close\r\n"
        b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    client = http1.Client()
    try:
        async with endpoint(answer) as closing:
            got = await _post(client, closing.port)
            assert (got.status_code, got.head, got.headers["retry-after"]) == (429, b"abcde", "7")
            await _post(client, closing.port)
            assert closing.connections == 2
    finally:
        await client.aclose()


async def test_a_body_ended_by_the_close_is_an_answer_and_a_cut_one_is_not() -> None:
    client = http1.Client()
    try:
        until_close = b"HTTP/1.1 500 Oops\r\n\r\nbroken"
        async with endpoint(until_close, close_after_answer=True) as ending:
            got = await _post(client, ending.port)
            assert (got.status_code, got.head) == (500, b"broken")
        cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
        async with endpoint(cut, close_after_answer=True) as cutting:
            try:
                await _post(client, cutting.port)
            except ConnectionError:
                pass
            else:
                raise AssertionError("a cut answer was taken as whole")
            assert len(cutting.bodies) == 1  # answered in part: not sent again
    finally:
        await client.aclose()


async def test_a_target_or_header_a_request_cannot_carry_is_refused_before_sending() -> None:
    ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
    client = http1.Client()
    try:
        async with endpoint(ok) as server:
            for target, header in [
                ("/in put", ("webhook-id", "msg_1")),
                ("/in", ("webhook-id", "msg_1\r\nx-injected: 1")),
                ("/in", ("bad name", "1")),
            ]:
                try:
                    await client.post(
                        scheme="http",
                        address="127.0.0.1",
                        port=server.port,
                        host_header=f"hooks.example:{server.port}",
                        server_name="hooks.example",
                        target=target,
                        headers=[header],
                        body=b"{}",
                        keep=1024,
                    )
                except http1.ProtocolError:
                    pass
                else:
                    raise AssertionError(f"{target!r} {header!r} was sent")
            await asyncio.sleep(0.01)
            assert server.bodies == []
    finally:
        await client.aclose()


async def test_a_connection_idle_past_the_limit_is_closed_though_never_used_again() -> None:
    """A destination sent to once (a webhook since deleted, an address DNS no longer gives)
    keeps no socket open for the rest of the process: a later request to anywhere closes
    its connection once idle past IDLE_SECONDS; one idle less long stays for its reuse."""
    ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
    clock = Seconds()
    client = http1.Client(clock=clock)
    try:
        async with endpoint(ok) as once, endpoint(ok) as often:
            await _post(client, once.port)
            await _post(client, often.port)
            clock.advance(http1.IDLE_SECONDS / 2)
            await _post(client, often.port)  # idle for half the limit: reused, kept again
            clock.advance(http1.IDLE_SECONDS / 2 + 1)
            await _post(client, often.port)
            await asyncio.wait_for(once.closing.wait(), 10)
            assert (once.connections, once.closed) == (1, 1)
            assert (often.connections, often.closed) == (1, 0)
    finally:
        await client.aclose()
