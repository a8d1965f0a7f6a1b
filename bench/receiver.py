"""A webhook receiver for the outbound benchmark, run as its own process.

Answers every POST 204 and notes (receipt time, webhook-id); `GET /stats` returns
{"count", "distinct", "times": {"<path> <webhook-id>": first receipt time}}, and
`GET /stats?times=0` the counts alone (what a poll needs: the times of 10,000 deliveries,
encoded and decoded every 10 ms, took CPU from the server being measured). HTTP/1.1 keep-alive on
asyncio streams: cheap per request, so the receiver is not what limits the worker.

    python -m bench.receiver --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

received: dict[str, float] = {}
count = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            if method == "POST":
                now = time.time()
                count += 1
                received.setdefault(path + " " + headers.get("webhook-id", ""), now)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            else:
                stats: dict[str, object] = {"count": count, "distinct": len(received)}
                if not path.endswith("times=0"):
                    stats["times"] = received
                body = json.dumps(stats).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
