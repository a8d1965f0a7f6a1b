"""Renaming a folder on its page: a name is unique among its siblings only, so a cousin's
name or one used in another project is free, and a sibling's is refused with nothing
changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from casefolio.db.engine import Database
from tests.api.v1.conftest import make_matter
from tests.factories import Actor
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]


async def test_a_rename_to_a_cousins_or_another_projects_name_is_done_a_siblings_refused(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    other = await make_matter(client, db, operator)
    h = matter.writer.headers

    async def folder(name: str, parent: str | None = None, url: str = matter.url()) -> str:
        made = await client.post(
            f"{url}/folders", json={"name": name, "parentId": parent}, headers=operator.headers
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    a, b = await folder("A"), await folder("B")
    await folder("Exhibits", a)
    drafts = await folder("Drafts", b)
    await folder("Transcripts", url=other.url())
    await folder("Transcripts", b)  # a sibling of Drafts
    writer = await person(matter.writer)

    async def rename(folder_id: str, name: str) -> httpx.Response:
        return await writer.post(
            f"/projects/{matter.id}/folders/{folder_id}/rename", {"name": name}
        )

    async def names() -> dict[str, str]:
        listed = await client.get(matter.url("/folders"), headers=h)
        return {f["id"]: f["name"] for f in listed.json()}

    before = await names()
    refused = await rename(drafts, "Transcripts")
    assert refused.status_code == 409, refused.text
    assert await names() == before

    assert (await rename(drafts, "Exhibits")).status_code == 303  # the name of a cousin
    assert (await names())[drafts] == "Exhibits"
    # The other project's root has a "Transcripts", and so does B; A's siblings do not.
    assert (await rename(a, "Transcripts")).status_code == 303
    assert sorted((await names()).values()) == [
        "B",
        "Exhibits",
        "Exhibits",
        "Transcripts",
        "Transcripts",
    ]
