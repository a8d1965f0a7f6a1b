"""A real HTTP receiver on 127.0.0.1 for webhook tests: records what arrives, answers as told."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    #: Answers to give, in order: (status, headers); then 200.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    #: When set: every request waits for it to be set before it is answered (a hanging endpoint).
    hold: threading.Event | None = None
    #: Each request in turn takes the first of these (while any are left) and waits for it
    #: to be set before it is answered: requests held, and released, one by one.
    holds: list[threading.Event] = field(default_factory=list)
    #: When set: the body of every answer (else `answer <status>`).
    body: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.received]


@contextmanager
def receiver(delay: float = 0.0) -> Iterator[Receiver]:
    state: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert state is not None
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if state.delay:
                time.sleep(state.delay)  # a slow endpoint, in the receiver's own thread
            if state.hold is not None:
                state.hold.wait()
            with state.lock:
                mine = state.holds.pop(0) if state.holds else None
            if mine is not None:
                mine.wait()
            with state.lock:
                state.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, headers = state.answers.pop(0) if state.answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            reply = f"answer {status}".encode() if state.body is None else state.body
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the worker opens dozens of connections at once
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", delay=delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
