"""Independent OpenProject clients from PyPI drive a real `casefolio serve` process:
openproject-cli 0.4.0 (document list/read, attachment list/add/download/delete; the calls
docs/openproject-client-notes.md lists for documents) and pyopenproject 0.7.4 (its attachment
creation, which uploads without a container, then a claim through its own PATCH request)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from openproject_cli.client import Client
from openproject_cli.config import Config
from openproject_cli.errors import AuthError, NotFoundError
from pyopenproject.api_connection.requests.patch_request import PatchRequest
from pyopenproject.business.exception.business_error import BusinessError
from pyopenproject.model.document import Document
from pyopenproject.openproject import OpenProject

from casefolio.config import Settings
from tests import servers
from tests.api.v3.conformance import ConformingTransport, check_v3_response


@pytest.fixture
def server_env(tmp_path: Path, settings: Settings, is_postgres: bool) -> dict[str, str]:
    """The server's environment: its own data folder; on PostgreSQL the run's database (which
    the `settings` fixture empties afterwards), on SQLite a fresh file of its own."""
    data = tmp_path / "served"
    url = settings.effective_database_url if is_postgres else f"sqlite:///{data / 'casefolio.db'}"
    return servers.server_env(data, url, rate_limit_per_minute="1000")


@pytest.fixture
def served(server_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Start `casefolio serve` on a free loopback port; yield (base URL, operator token)."""
    servers.cli(server_env, "migrate")
    token = servers.init_token(server_env, name="Olivia Operator")
    with servers.running_server(server_env) as server:
        yield server.base_url, token


def _seed(base_url: str, token: str) -> tuple[int, list[int]]:
    """Create a project (downloads allowed) with three documents through v1."""
    headers = {"X-API-Token": token}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        created = http.post(
            "/api/v1/projects", json={"name": "Real client", "settings": {"downloadViaApi": True}}
        )
        assert created.status_code == 201, created.text
        project_id = int(created.json()["id"])
        ids = []
        for i in range(3):
            uploaded = http.post(
                f"/api/v1/projects/{project_id}/documents",
                files={
                    "metadata": (None, json.dumps({"title": f"Exhibit {i}"}), "application/json"),
                    "file": (f"exhibit-{i}.pdf", f"%PDF exhibit {i}".encode(), "application/pdf"),
                },
            )
            assert uploaded.status_code == 201, uploaded.text
            ids.append(int(uploaded.json()["id"]))
    return project_id, ids


def test_openproject_cli_client_works_unchanged(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, token = served
    project_id, ids = _seed(base_url, token)
    conforming = ConformingTransport()
    client = Client(Config(base_url=base_url, token=token, max_retries=0), transport=conforming)
    try:
        assert client.current_user()["name"] == "Olivia Operator"

        # Pages of two: the client walks offset=1, 2 as page numbers until `total`.
        documents = client.collect("documents", page_size=2)
        assert [d["id"] for d in documents] == ids
        assert [d["title"] for d in documents] == ["Exhibit 0", "Exhibit 1", "Exhibit 2"]

        doc = client.get_json(f"documents/{ids[1]}")
        assert doc["_embedded"]["project"]["id"] == project_id
        attachments_href = doc["_links"]["attachments"]["href"]
        attachments = client.get_json(attachments_href)["_embedded"]["elements"]
        assert [a["fileName"] for a in attachments] == ["exhibit-1.pdf"]

        new = client.request(
            "POST",
            doc["_links"]["addAttachment"]["href"],
            files={
                "metadata": (
                    None,
                    json.dumps({"fileName": "notes.txt", "description": {"raw": "d"}}),
                    "application/json",
                ),
                "file": ("notes.txt", io.BytesIO(b"hi from openproject-cli"), "text/plain"),
            },
        ).json()
        assert (new["fileName"], new["description"]["raw"]) == ("notes.txt", "d")
        listed = client.get_json(attachments_href)["_embedded"]["elements"]
        assert [a["id"] for a in listed] == [attachments[0]["id"], new["id"]]

        buffer = io.BytesIO()
        written = client.stream_download(new["_links"]["downloadLocation"]["href"], buffer)
        assert (written, buffer.getvalue()) == (23, b"hi from openproject-cli")
        saved = client.download_to_path(
            attachments[0]["_links"]["downloadLocation"]["href"], str(tmp_path / "exhibit.pdf")
        )
        assert saved["sha256"] == attachments[0]["digest"]["hash"]
        assert saved["sha256"] == hashlib.sha256(b"%PDF exhibit 1").hexdigest()

        client.delete(new["_links"]["delete"]["href"])
        assert len(client.get_json(attachments_href)["_embedded"]["elements"]) == 1

        with pytest.raises(NotFoundError):
            client.get_json("documents/999999")
    finally:
        client.close()

    stranger = Client(
        Config(base_url=base_url, token="cf_not-a-token", max_retries=0),
        transport=ConformingTransport(),
    )
    with pytest.raises(AuthError, match="correct credentials"):
        stranger.get_json("documents")
    stranger.close()
    assert ("GET", f"/api/v3/documents/{ids[1]}", 200) in conforming.checked
    assert ("GET", "/api/v3/documents/999999", 404) in conforming.checked


@pytest.fixture
def checked_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """pyopenproject opens a requests.Session per call: each /api/v3 response it receives is
    checked against the schemas as it arrives. Returns what was checked."""
    checked: list[str] = []
    send = requests.Session.send

    def conforming_send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        path = urlsplit(request.url).path
        if path.startswith("/api/v3") and check_v3_response(request.method, path, response):
            checked.append(f"{request.method} {path} {response.status_code}")
        return response

    monkeypatch.setattr(requests.Session, "send", conforming_send)
    return checked


def test_pyopenproject_creates_an_attachment_a_document_then_claims(
    served: tuple[str, str], tmp_path: Path, checked_requests: list[str]
) -> None:
    base_url, token = served
    _, ids = _seed(base_url, token)
    scan = tmp_path / "scan.png"
    scan.write_bytes(b"\x89PNG scanned exhibit")
    client = OpenProject(url=base_url, api_key=token)
    attachments = client.get_attachment_service()

    # pyopenproject posts to /api/v3/attachments: a file part named "attachment", no type
    created = attachments.create("scan.png", "Scanned exhibit", str(scan))
    assert (created.fileName, created.status, created.contentType) == (
        "scan.png",
        "uploaded",
        "image/png",
    )
    assert created._links["container"] == {"href": None}
    assert attachments.find(created).description["raw"] == "Scanned exhibit"
    downloads = tmp_path / "downloads"
    assert attachments.download_by_context(created, str(downloads)) == scan.read_bytes()
    assert (downloads / "scan.png").read_bytes() == scan.read_bytes()

    link = {"href": created._links["self"]["href"]}
    body = {"_links": {"attachments": [link]}}
    patched = PatchRequest(client.conn, f"/api/v3/documents/{ids[0]}", json=body).execute()
    elements = patched["_embedded"]["attachments"]["_embedded"]["elements"]
    assert [a["fileName"] for a in elements] == ["exhibit-0.pdf", "scan.png"]
    document = client.get_document_service().find(Document({"id": ids[0]}))
    assert document._embedded["attachments"]["count"] == 2
    claimed = attachments.find(created)
    assert claimed._links["container"]["href"] == f"/api/v3/documents/{ids[0]}"

    # without valid credentials pyopenproject gets nothing (other users: test_unclaimed.py)
    stranger = OpenProject(url=base_url, api_key="cf_not-a-token").get_attachment_service()
    with pytest.raises(BusinessError):
        stranger.find(created)
    assert "POST /api/v3/attachments 201" in checked_requests
    assert f"GET /api/v3/attachments/{created.id} 401" in checked_requests
