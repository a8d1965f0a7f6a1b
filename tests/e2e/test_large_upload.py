"""A 1 GiB upload streams through a real server without the server's memory growing: through
the API, and through the web page's upload (the same streaming receiver)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from casefolio.config import Settings
from tests.servers import cli, init_token, running_server, server_env

GIB = 1024**3
CHUNK = 1024 * 1024
RSS_BUDGET = 64 * 1024 * 1024


def _body(digest: hashlib._Hash) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for i in range(GIB // CHUNK):
        chunk = i.to_bytes(8, "big") + block[8:]  # vary the content a little
        digest.update(chunk)
        yield chunk


def _rss_tree(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


class PeakRss:
    """The server's largest resident size while a block runs, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = self.peak = _rss_tree(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_tree(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_one_gib_upload_on_the_web_page_keeps_server_memory_flat(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    password = "a web page password"
    cli(env, "users", "set-password", "op@example.com", "--password-stdin", input=password + "\n")
    with running_server(env) as server, httpx.Client(base_url=server.base_url) as web:
        project = httpx.post(
            f"{server.base_url}/api/v1/projects",
            json={"name": "Big", "settings": {"downloadViaApi": True}},
            headers={"X-API-Token": token},
        ).json()
        signed_in = web.post("/signin", data={"email": "op@example.com", "password": password})
        assert signed_in.status_code == 303
        page = web.get(f"/projects/{project['id']}")
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert found
        boundary = "casefolio-large-upload"
        digest = hashlib.sha256()

        def multipart() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            yield from _body(digest)
            yield f"\r\n--{boundary}--\r\n".encode()

        with PeakRss(server.pid) as rss:
            response = web.post(
                f"/projects/{project['id']}/upload",
                params={"csrf": found.group(1)},
                content=multipart(),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Accept": "application/json",
                },
                timeout=600,
            )
        assert response.status_code == 201, response.text
        document = httpx.get(
            f"{server.base_url}/api/v1/projects/{project['id']}/documents/{response.json()['id']}",
            headers={"X-API-Token": token},
        ).json()
        assert document["currentVersion"]["size"] == GIB
        assert document["currentVersion"]["sha256"] == digest.hexdigest()
        grew = f"{rss.growth / 2**20:.1f} MiB"
        print(f"server RSS baseline {rss.baseline / 2**20:.1f} MiB, growth {grew}")
        assert rss.growth < RSS_BUDGET, f"server RSS grew by {grew}"


def test_one_gib_upload_keeps_server_memory_flat(settings: Settings, tmp_path: Path) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    headers = {"X-API-Token": token}
    with running_server(env) as server:
        project = httpx.post(
            f"{server.base_url}/api/v1/projects",
            json={"name": "Big", "settings": {"downloadViaApi": True}},
            headers=headers,
        ).json()
        # Warm the server up so the baseline includes its steady-state allocations.
        httpx.get(f"{server.base_url}/api/v1/projects", headers=headers)
        digest = hashlib.sha256()
        with PeakRss(server.pid) as rss:
            response = httpx.post(
                f"{server.base_url}/api/v1/projects/{project['id']}/documents",
                params={"fileName": "big.bin"},
                content=_body(digest),
                headers={**headers, "Content-Type": "application/octet-stream"},
                timeout=600,
            )
        assert response.status_code == 201, response.text
        version = response.json()["currentVersion"]
        assert version["size"] == GIB
        assert version["sha256"] == digest.hexdigest()
        grew = f"{rss.growth / 2**20:.1f} MiB"
        print(f"server RSS baseline {rss.baseline / 2**20:.1f} MiB, growth {grew}")
        assert rss.growth < RSS_BUDGET, f"server RSS grew by {grew}"
        head = httpx.head(
            f"{server.base_url}/api/v1/projects/{project['id']}/documents/{response.json()['id']}/content",
            headers=headers,
        )
        assert head.headers["content-length"] == str(GIB)
