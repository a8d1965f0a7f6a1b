"""The listening sockets `casefolio serve` hands its workers (SO_REUSEPORT, one per worker)."""

from __future__ import annotations

import asyncio
import socket

from casefolio.cli.server import _reusable_socket


async def test_connections_on_a_worker_socket_send_without_delay() -> None:
    # asyncio switches Nagle's algorithm off (TCP_NODELAY) only on sockets made as TCP; with
    # it on, an answer written in two parts (headers, body) waited for the client's ACK.
    listening = _reusable_socket(socket.AF_INET, "127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        host, port = listening.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            assert await asyncio.wait_for(accepted, 5) != 0
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
