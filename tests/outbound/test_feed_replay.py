"""A client that applies the change feed ends with exactly the server's state."""

from __future__ import annotations

import random
from typing import Any

import httpx

from casefolio.db.engine import Database
from tests.factories import Actor, make_actor
from tests.outbound.conftest import changes_since, feed_cursor


class FeedClient:
    """A sync client: its copy of every document and folder it can see, kept by the feed."""

    def __init__(self, http: httpx.AsyncClient, actor: Actor) -> None:
        self.http, self.actor = http, actor
        self.documents: dict[str, dict[str, Any]] = {}
        self.folders: set[tuple[str, str]] = set()
        self.cursor = ""

    async def start(self) -> None:
        self.cursor = await feed_cursor(self.http, self.actor)

    async def sync(self) -> None:
        changes, self.cursor = await changes_since(self.http, self.actor, self.cursor, limit=7)
        for change in changes:
            await self.apply(change)

    async def apply(self, change: dict[str, Any]) -> None:
        kind, project = change["type"], change["projectId"]
        if kind == "project.access_lost":
            self._forget(project)
        elif kind == "project.access_granted":
            self._forget(project)
            self.documents |= {d["id"]: d for d in await self._list(project, "documents")}
            self.folders |= {(project, f["id"]) for f in await self._list(project, "folders")}
        elif kind == "document.deleted":
            self.documents.pop(change["documentId"], None)
        elif kind == "folder.created":
            self.folders.add((project, change["folderId"]))
        elif kind == "folder.deleted":
            self.folders.discard((project, change["folderId"]))
        elif change["documentId"] is not None:
            got = await self.http.get(
                f"/api/v1/projects/{project}/documents/{change['documentId']}",
                headers=self.actor.headers,
            )
            if got.status_code == 404:  # deleted since; its document.deleted follows
                self.documents.pop(change["documentId"], None)
            else:
                assert got.status_code == 200, got.text
                self.documents[change["documentId"]] = got.json()

    def _forget(self, project: str) -> None:
        self.documents = {k: d for k, d in self.documents.items() if d["projectId"] != project}
        self.folders = {(p, f) for p, f in self.folders if p != project}

    async def _list(self, project: str, what: str) -> list[dict[str, Any]]:
        got = await self.http.get(
            f"/api/v1/projects/{project}/{what}?limit=1000", headers=self.actor.headers
        )
        assert got.status_code == 200, got.text
        items: list[dict[str, Any]] = got.json()
        return items


async def test_replaying_random_operations_gives_the_servers_state(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    rng = random.Random(22)
    # Budgets far above the default: the run makes hundreds of calls in a few seconds.
    boss = await make_actor(db, operator=True, rate_limit=1_000_000)
    reader = await make_actor(db, rate_limit=1_000_000)
    h = boss.headers
    projects = [
        int((await client.post("/api/v1/projects", json={"name": n}, headers=h)).json()["id"])
        for n in ("Always", "Sometimes")
    ]
    always, sometimes = projects
    granted = await client.put(
        f"/api/v1/projects/{always}/users/{reader.email}", json={"role": "Read Only"}, headers=h
    )
    assert granted.status_code == 200, granted.text
    field = {
        p: (
            await client.post(
                f"/api/v1/projects/{p}/fields", json={"name": "Tag", "type": "text"}, headers=h
            )
        ).json()["id"]
        for p in projects
    }
    # The reader of `always` starts with no access to `sometimes`.
    watcher = FeedClient(client, reader)
    await watcher.start()
    reader_on_sometimes = False
    docs: dict[int, list[str]] = {p: [] for p in projects}
    folders: dict[int, list[str]] = {p: [] for p in projects}

    async def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201, 204), response.text
        return response.json() if response.content else {}

    for step in range(150):
        p = rng.choice(projects)
        base = f"/api/v1/projects/{p}"
        roll = rng.random()
        if roll < 0.25 or not docs[p]:
            made = await ok(
                await client.post(
                    f"{base}/documents?fileName=f{step}.txt", content=f"{step}".encode(), headers=h
                )
            )
            docs[p].append(made["id"])
        elif roll < 0.35:
            doc = rng.choice(docs[p])
            await ok(
                await client.post(
                    f"{base}/documents/{doc}/replace?fileName=r{step}.txt",
                    content=f"r{step}".encode(),
                    headers=h,
                )
            )
        elif roll < 0.45:
            doc = rng.choice(docs[p])
            target = rng.choice([*folders[p], None]) if folders[p] else None
            url = f"{base}/documents/{doc}/{target}" if target else f"{base}/documents/{doc}/root"
            if target is None:
                await ok(
                    await client.patch(
                        f"{base}/documents/{doc}", json={"title": f"t{step}"}, headers=h
                    )
                )
            else:
                await ok(await client.put(url, headers=h))
        elif roll < 0.55:
            doc = rng.choice(docs[p])
            await ok(
                await client.put(
                    f"{base}/documents/{doc}/fields/{field[p]}",
                    json={"value": f"v{step}"},
                    headers=h,
                )
            )
        elif roll < 0.62:
            doc = rng.choice(docs[p])
            versions = (await client.get(f"{base}/documents/{doc}/versions", headers=h)).json()
            if len(versions) > 1:
                victim = rng.choice(versions)["id"]
                await ok(
                    await client.delete(f"{base}/documents/{doc}/versions/{victim}", headers=h)
                )
        elif roll < 0.72:
            doc = docs[p].pop(rng.randrange(len(docs[p])))
            await ok(await client.delete(f"{base}/documents/{doc}", headers=h))
        elif roll < 0.82:
            made = await ok(
                await client.post(f"{base}/folders", json={"name": f"F{step}"}, headers=h)
            )
            folders[p].append(made["id"])
        elif roll < 0.88 and folders[p]:
            folder = rng.choice(folders[p])
            listed = await client.get(f"{base}/documents/folder/{folder}", headers=h)
            if listed.json() == []:
                folders[p].remove(folder)
                await ok(await client.delete(f"{base}/folders/{folder}", headers=h))
        else:
            url = f"/api/v1/projects/{sometimes}/users/{reader.email}"
            if reader_on_sometimes:
                await ok(await client.delete(url, headers=h))
            else:
                await ok(await client.put(url, json={"role": "Read Only"}, headers=h))
            reader_on_sometimes = not reader_on_sometimes
        if rng.random() < 0.3:
            await watcher.sync()
    await watcher.sync()

    truth = FeedClient(client, reader)
    for p in [always, *([sometimes] if reader_on_sometimes else [])]:
        await truth.apply({"type": "project.access_granted", "projectId": str(p)})
    assert watcher.folders == truth.folders
    assert watcher.documents.keys() == truth.documents.keys()
    assert watcher.documents == truth.documents
    assert len(truth.documents) > 10  # the run did build something to compare
