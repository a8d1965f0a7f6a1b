from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.domain import users
from tests import traces
from tests.api.v1.conftest import Matter, make_matter
from tests.factories import Actor, make_actor


async def test_create_read_update_project(client: httpx.AsyncClient, operator: Actor) -> None:
    created = await client.post(
        "/api/v1/projects", json={"name": "Acme arbitration"}, headers=operator.headers
    )
    assert created.status_code == 201
    body = created.json()
    assert body["settings"] == {"downloadViaApi": False}
    assert body["role"] == "Project Admin"
    url = f"/api/v1/projects/{body['id']}"
    patched = await client.patch(
        url,
        json={"description": "LCIA 2026/1", "settings": {"downloadViaApi": True}},
        headers=operator.headers,
    )
    assert patched.status_code == 200
    assert patched.json()["settings"]["downloadViaApi"] is True
    assert patched.json()["name"] == "Acme arbitration"
    via_post = await client.post(url, json={"name": "Acme v Beta"}, headers=operator.headers)
    assert via_post.status_code == 200 and via_post.json()["name"] == "Acme v Beta"
    assert (await client.get(url, headers=operator.headers)).json()["description"] == "LCIA 2026/1"


async def test_project_list_shows_only_visible_projects(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    other = await client.post("/api/v1/projects", json={"name": "Secret"}, headers=operator.headers)
    assert other.status_code == 201
    seen_by_reader = await client.get("/api/v1/projects", headers=matter.reader.headers)
    assert [p["id"] for p in seen_by_reader.json()] == [str(matter.id)]
    assert seen_by_reader.json()[0]["role"] == "Read Only"
    assert (await client.get("/api/v1/projects", headers=matter.outsider.headers)).json() == []
    everything = await client.get("/api/v1/projects", headers=operator.headers)
    assert len(everything.json()) == 2


async def test_team_grant_gives_members_access_and_strongest_role_wins(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "Counsel"}, headers=operator.headers)
    team_id = team.json()["id"]
    await client.put(
        f"/api/v1/teams/{team_id}/users/{matter.outsider.email}", headers=operator.headers
    )
    await client.put(
        f"/api/v1/teams/{team_id}/users/{matter.reader.email}", headers=operator.headers
    )
    granted = await client.put(
        matter.url(f"/teams/{team_id}"), json={"role": "Read Write"}, headers=matter.admin.headers
    )
    assert granted.status_code == 200 and granted.json()["role"] == "Read Write"

    teams = await client.get(matter.url("/teams"), headers=matter.outsider.headers)
    assert [(t["name"], t["role"]) for t in teams.json()] == [("Counsel", "Read Write")]
    members = {
        m["email"]: m
        for m in (await client.get(matter.url("/users"), headers=matter.reader.headers)).json()
    }
    assert members[matter.outsider.email]["role"] == "Read Write"
    assert members[matter.outsider.email]["directRole"] is None
    assert members[matter.reader.email]["role"] == "Read Write"
    assert members[matter.reader.email]["directRole"] == "Read Only"

    removed = await client.delete(matter.url(f"/teams/{team_id}"), headers=matter.admin.headers)
    assert removed.status_code == 204
    assert (await client.get(matter.url(), headers=matter.outsider.headers)).status_code == 404


async def test_put_user_without_body_grants_read_write(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    put = await client.put(
        matter.url(f"/users/{matter.outsider.email}"),
        headers={**matter.admin.headers, "Content-Length": "0"},
    )
    assert put.status_code == 200 and put.json()["role"] == "Read Write"
    assert (await client.get(matter.url(), headers=matter.outsider.headers)).json()[
        "role"
    ] == "Read Write"
    gone = await client.delete(
        matter.url(f"/users/{matter.outsider.email}"), headers=matter.admin.headers
    )
    assert gone.status_code == 204
    assert (await client.get(matter.url(), headers=matter.outsider.headers)).status_code == 404


async def test_unknown_role_is_400(client: httpx.AsyncClient, matter: Matter) -> None:
    bad = await client.put(
        matter.url(f"/users/{matter.outsider.email}"),
        json={"role": "Boss"},
        headers=matter.admin.headers,
    )
    assert bad.status_code == 400 and "Unknown role" in bad.json()["detail"]


async def test_template_is_copied_into_new_project(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "Review"}, headers=operator.headers)
    template = await client.post(
        "/api/v1/templates",
        json={
            "name": "Litigation",
            "folders": [
                {"name": "Pleadings", "children": [{"name": "Drafts"}]},
                {"name": "Evidence"},
            ],
            "fields": [
                {"name": "Custodian", "type": "text"},
                {"name": "Privilege", "type": "choice", "choices": ["None", "Privileged"]},
            ],
            "grants": [
                {"teamId": team.json()["id"], "role": "Read Only"},
                {"email": member.email, "role": "Read Write"},
            ],
        },
        headers=operator.headers,
    )
    assert template.status_code == 201, template.text
    listed = await client.get("/api/v1/templates", headers=member.headers)
    assert [t["name"] for t in listed.json()] == ["Litigation"]

    project = await client.post(
        "/api/v1/projects",
        json={"name": "From template", "templateId": template.json()["id"]},
        headers=operator.headers,
    )
    assert project.status_code == 201
    url = f"/api/v1/projects/{project.json()['id']}"
    folders = (await client.get(f"{url}/folders", headers=member.headers)).json()
    by_name = {f["name"]: f for f in folders}
    assert set(by_name) == {"Pleadings", "Drafts", "Evidence"}
    assert by_name["Drafts"]["parentId"] == by_name["Pleadings"]["id"]
    fields = (await client.get(f"{url}/fields", headers=member.headers)).json()
    assert [(f["name"], f["type"]) for f in fields] == [
        ("Custodian", "text"),
        ("Privilege", "choice"),
    ]
    teams = (await client.get(f"{url}/teams", headers=member.headers)).json()
    assert [(t["name"], t["role"]) for t in teams] == [("Review", "Read Only")]
    assert (await client.get(url, headers=member.headers)).json()["role"] == "Read Write"


async def test_template_with_unknown_team_is_refused(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    bad = await client.post(
        "/api/v1/templates",
        json={"name": "Broken", "grants": [{"teamId": "999", "role": "Read Only"}]},
        headers=operator.headers,
    )
    assert bad.status_code == 400 and "999" in bad.json()["detail"]
    assert (await client.get("/api/v1/templates", headers=operator.headers)).json() == []


@pytest.mark.parametrize(
    ("folders", "words"),
    [
        # Names a folder cannot have: each was stored, and every project made from the
        # template then failed (400 or 409), naming no template.
        ([{"name": "a/b"}], "cannot contain '/'"),
        ([{"name": "x\u202ey"}], "U+202E"),
        ([{"name": "a\tb"}], "U+0009"),
        ([{"name": "\u200b"}], "1 to 255 characters"),
        ([{"name": "P", "children": [{"name": "line\u2028break"}]}], "In folder 'P'"),
        # Siblings that become one name once stripped and composed (NFC).
        ([{"name": "A"}, {"name": "A\u200b"}], "unique among siblings"),
        ([{"name": "e\u0301"}, {"name": "\u00e9"}], "unique among siblings"),
    ],
)
async def test_a_template_folder_follows_the_folder_rules(
    client: httpx.AsyncClient, operator: Actor, folders: list[dict[str, Any]], words: str
) -> None:
    made = await client.post(
        "/api/v1/templates", json={"name": "Odd", "folders": folders}, headers=operator.headers
    )
    assert made.status_code == 400, made.text
    assert words in made.json()["detail"]
    assert (await client.get("/api/v1/templates", headers=operator.headers)).json() == []


async def test_a_template_keeps_folder_names_as_projects_name_them(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    made = await client.post(
        "/api/v1/templates",
        json={"name": "Kept", "folders": [{"name": " Caf\u0065\u0301 \u200b"}]},
        headers=operator.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["folders"] == [{"name": "Caf\u00e9", "children": []}]
    project = await client.post(
        "/api/v1/projects",
        json={"name": "From Kept", "templateId": made.json()["id"]},
        headers=operator.headers,
    )
    assert project.status_code == 201, project.text
    url = f"/api/v1/projects/{project.json()['id']}/folders"
    assert [f["name"] for f in (await client.get(url, headers=operator.headers)).json()] == [
        "Caf\u00e9"
    ]


@pytest.mark.parametrize(("extra", "status"), [(0, 201), (1, 400)])
async def test_a_template_holds_5000_folders_in_all_at_most(
    client: httpx.AsyncClient, operator: Actor, extra: int, status: int
) -> None:
    # Every list within its own limit of 1,000; 5,000 (or 5,001) folders in all.
    folders = [
        {"name": f"T{t}", "children": [{"name": f"C{c}"} for c in range(999)]} for t in range(5)
    ] + [{"name": f"E{e}"} for e in range(extra)]
    made = await client.post(
        "/api/v1/templates", json={"name": "Big", "folders": folders}, headers=operator.headers
    )
    assert made.status_code == status, made.text[:300]
    listed = (await client.get("/api/v1/templates", headers=operator.headers)).json()
    if status == 400:
        assert "5,000 folders in all" in made.json()["detail"]
        assert listed == []
    else:
        assert [t["name"] for t in listed] == ["Big"]


async def test_unknown_template_is_404(client: httpx.AsyncClient, operator: Actor) -> None:
    missing = await client.post(
        "/api/v1/projects", json={"name": "x", "templateId": 77}, headers=operator.headers
    )
    assert missing.status_code == 404
    assert (await client.get("/api/v1/projects", headers=operator.headers)).json() == []


async def test_project_users_are_paged_by_user_id_across_direct_and_team_grants(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "Paralegals"}, headers=operator.headers)
    team_id = team.json()["id"]
    # The outsider gets a role only through the team; the reader has both kinds.
    for actor in (matter.outsider, matter.reader):
        added = await client.put(
            f"/api/v1/teams/{team_id}/users/{actor.email}", headers=operator.headers
        )
        assert added.status_code == 200, added.text
    granted = await client.put(
        matter.url(f"/teams/{team_id}"), json={"role": "Read Write"}, headers=operator.headers
    )
    assert granted.status_code == 200, granted.text

    seen: list[dict[str, object]] = []
    url: str | None = matter.url("/users?limit=2")
    while url:
        page = await client.get(url, headers=matter.reader.headers)
        assert page.status_code == 200, page.text
        assert 1 <= len(page.json()) <= 2
        seen += page.json()
        url = page.links.get("next", {}).get("url")

    # The operator who created the project holds Project Admin on it too.
    everyone = (operator, matter.admin, matter.writer, matter.reader, matter.outsider)
    expected = sorted(everyone, key=lambda a: a.user_id)
    assert [m["email"] for m in seen] == [a.email for a in expected]
    by_email = {m["email"]: m for m in seen}
    assert by_email[matter.outsider.email]["role"] == "Read Write"
    assert by_email[matter.outsider.email]["directRole"] is None
    assert by_email[matter.outsider.email]["teamIds"] == [team_id]
    assert by_email[matter.reader.email]["role"] == "Read Write"
    assert by_email[matter.reader.email]["directRole"] == "Read Only"
    assert by_email[matter.admin.email]["teamIds"] == []


async def _walk(client: httpx.AsyncClient, url: str, actor: Actor) -> list[dict[str, object]]:
    """Every item of a list, one item per page, following the Link headers."""
    seen: list[dict[str, object]] = []
    next_url: str | None = url + "?limit=1"
    while next_url:
        page = await client.get(next_url, headers=actor.headers)
        assert page.status_code == 200, page.text
        assert len(page.json()) == 1
        seen += page.json()
        next_url = page.links.get("next", {}).get("url")
    return seen


async def test_project_teams_and_fields_are_paged(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    team_ids = []
    for name, role in (("Litigation", "Read Only"), ("Billing", "Project Admin")):
        team = await client.post("/api/v1/teams", json={"name": name}, headers=operator.headers)
        team_ids.append(team.json()["id"])
        granted = await client.put(
            matter.url(f"/teams/{team_ids[-1]}"), json={"role": role}, headers=operator.headers
        )
        assert granted.status_code == 200, granted.text
    for name in ("Custodian", "Bates number", "Privileged"):
        made = await client.post(
            matter.url("/fields"), json={"name": name, "type": "text"}, headers=operator.headers
        )
        assert made.status_code == 201, made.text

    teams = await _walk(client, matter.url("/teams"), matter.reader)
    field_names = await _walk(client, matter.url("/fields"), matter.reader)

    assert [(t["id"], t["name"], t["role"]) for t in teams] == [
        (team_ids[0], "Litigation", "Read Only"),
        (team_ids[1], "Billing", "Project Admin"),
    ]
    assert [f["name"] for f in field_names] == ["Custodian", "Bates number", "Privileged"]


async def test_a_choice_with_a_control_character_is_refused_and_nothing_made(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    # A choice is listed and picked as a name is; a line break or a bidi control in one was
    # stored. Spaces at its ends and a decomposed accent are tidied as a name's are.
    before = (await client.get(matter.url("/fields"), headers=operator.headers)).json()
    for bad in ("Yes\nNo", "Tab\there", "\u202eevil"):
        refused = await client.post(
            matter.url("/fields"),
            json={"name": "Status", "type": "choice", "choices": ["Open", bad]},
            headers=operator.headers,
        )
        assert refused.status_code == 400, refused.text
        assert "Choice 2 contains U+" in refused.json()["detail"], refused.text
    assert (await client.get(matter.url("/fields"), headers=operator.headers)).json() == before
    made = await client.post(
        matter.url("/fields"),
        json={"name": "Status", "type": "choice", "choices": [" Open ", "Re\u0301vise\u0301"]},
        headers=operator.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["choices"] == ["Open", "R\u00e9vis\u00e9"]


async def test_a_second_grant_replaces_the_role_of_the_first(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    regranted = await client.put(
        matter.url(f"/users/{matter.reader.email}"),
        json={"role": "Project Admin"},
        headers=operator.headers,
    )
    assert regranted.status_code == 200, regranted.text
    assert regranted.json()["directRole"] == "Project Admin"
    members = await client.get(matter.url("/users"), headers=operator.headers)
    roles = [m["directRole"] for m in members.json() if m["email"] == matter.reader.email]
    assert roles == ["Project Admin"]  # one grant, its role changed

    team = await client.post("/api/v1/teams", json={"name": "Review"}, headers=operator.headers)
    team_url = matter.url(f"/teams/{team.json()['id']}")
    for role in ("Read Only", "Read Write"):
        granted = await client.put(team_url, json={"role": role}, headers=operator.headers)
        assert granted.status_code == 200, granted.text
    teams = await client.get(matter.url("/teams"), headers=operator.headers)
    assert [(t["name"], t["role"]) for t in teams.json()] == [("Review", "Read Write")]


async def test_each_listed_project_carries_the_callers_role_as_its_own_read_does(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """The list reads roles in its one statement; each must be what GET of the project says,
    direct grants, team grants (the strongest wins) and none alike, across pages."""
    h = operator.headers
    team = (await client.post("/api/v1/teams", json={"name": "Panel"}, headers=h)).json()["id"]
    await client.put(f"/api/v1/teams/{team}/users/{matter.reader.email}", headers=h)
    made = []
    for name, role in [("Via team", "Project Admin"), ("Weaker team", "Read Only"), ("None", "")]:
        created = await client.post("/api/v1/projects", json={"name": name}, headers=h)
        made.append(created.json()["id"])
        if role:
            granted = await client.put(
                f"/api/v1/projects/{made[-1]}/teams/{team}", json={"role": role}, headers=h
            )
            assert granted.status_code == 200, granted.text
    await client.put(
        f"/api/v1/projects/{made[1]}/users/{matter.reader.email}",
        json={"role": "Read Write"},
        headers=h,
    )
    for actor in (matter.reader, matter.writer, operator):
        listed, cursor = [], None
        while True:
            params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            page = await client.get("/api/v1/projects", params=params, headers=actor.headers)
            assert page.status_code == 200, page.text
            listed += page.json()
            cursor = page.links.get("next", {}).get("url")
            if cursor is None:
                break
            cursor = httpx.URL(cursor).params["cursor"]
        for project in listed:
            one = await client.get(f"/api/v1/projects/{project['id']}", headers=actor.headers)
            assert project["role"] == one.json()["role"], (actor.email, project)
        roles = {p["name"]: p["role"] for p in listed}
        if actor is matter.reader:
            assert roles == {
                "Smith v Jones": "Read Only",
                "Via team": "Project Admin",
                "Weaker team": "Read Write",
            }
    assert {p["role"] for p in (await client.get("/api/v1/projects", headers=h)).json()} == {
        "Project Admin"
    }


async def test_template_grants_report_what_direct_grants_report(
    client: httpx.AsyncClient, db: Database, operator: Actor, member: Actor
) -> None:
    h = operator.headers
    team = (await client.post("/api/v1/teams", json={"name": "Review"}, headers=h)).json()["id"]
    grants = [
        {"teamId": team, "role": "Read Only"},
        {"email": member.email, "role": "Read Write"},
    ]
    template = await client.post(
        "/api/v1/templates", json={"name": "Granting", "grants": grants}, headers=h
    )
    assert template.status_code == 201, template.text

    def reported(found: traces.Traces) -> set[tuple[str, str, int | None, str]]:
        return {
            (e.action, e.target_type, e.target_id, json.dumps(e.details, sort_keys=True))
            for e in found.entries
            if e.action.startswith("project.") and e.action != "project.created"
        }

    start = await traces.mark(db)
    made = await client.post(
        "/api/v1/projects",
        json={"name": "From template", "templateId": template.json()["id"]},
        headers=h,
    )
    assert made.status_code == 201, made.text
    from_template = await traces.since(db, start)

    plain = (await client.post("/api/v1/projects", json={"name": "Plain"}, headers=h)).json()["id"]
    start = await traces.mark(db)
    for path, role in ((f"teams/{team}", "Read Only"), (f"users/{member.email}", "Read Write")):
        done = await client.put(f"/api/v1/projects/{plain}/{path}", json={"role": role}, headers=h)
        assert done.status_code == 200, done.text
    direct = await traces.since(db, start)

    expected = {
        ("project.team_set", "team", int(team), '{"role": "Read Only"}'),
        ("project.member_set", "user", member.user_id, '{"role": "Read Write"}'),
        ("project.access_granted", "user", member.user_id, "{}"),
    }
    # The new project's creator becomes its Project Admin, reported as any grant is.
    creator = ("project.member_set", "user", operator.user_id, '{"role": "Project Admin"}')
    assert reported(from_template) == expected | {creator}
    assert reported(direct) == expected
    assert set(from_template.change_types) >= {"project.member_set", "project.team_set"}


async def test_an_operator_without_a_grant_is_project_admin_in_a_read_as_in_the_list(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Operators act as Project Admin everywhere (DESIGN.md), granted or not: a project's read
    says so, as the list does."""
    other = await make_actor(db, operator=True)
    members = await client.get(matter.url("/users"), headers=other.headers)
    assert other.email not in {m["email"] for m in members.json()}  # no grant of their own
    one = await client.get(matter.url(), headers=other.headers)
    assert one.status_code == 200, one.text
    assert one.json()["role"] == "Project Admin"
    listed = await client.get("/api/v1/projects", headers=other.headers)
    assert {p["id"]: p["role"] for p in listed.json()} == {str(matter.id): "Project Admin"}


async def test_a_creator_who_is_no_longer_an_operator_still_switches_downloads(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """downloadViaApi is the creator's and the operators' to change (DESIGN.md); a creator
    made a plain user keeps it, while another Project Admin does not have it."""
    creator = await make_actor(db, operator=True)
    made = await client.post("/api/v1/projects", json={"name": "Theirs"}, headers=creator.headers)
    assert made.status_code == 201, made.text
    url = f"/api/v1/projects/{made.json()['id']}"
    admin = await make_actor(db)
    granted = await client.put(
        f"{url}/users/{admin.email}", json={"role": "Project Admin"}, headers=operator.headers
    )
    assert granted.status_code == 200, granted.text
    # Only the pages and the CLI take an operator's flag away; a new token of the creator's
    # is not one this process remembers as an operator's.
    async with db.write() as session:
        await users.set_operator(session, who=None, user_id=creator.user_id, is_operator=False)
    issued = await client.post(
        "/api/v1/tokens",
        json={"userId": str(creator.user_id), "name": "after"},
        headers=operator.headers,
    )
    assert issued.status_code == 201, issued.text
    as_creator = {"X-API-Token": issued.json()["token"]}
    not_operator = await client.post("/api/v1/projects", json={"name": "X"}, headers=as_creator)
    assert not_operator.status_code == 403

    on = {"settings": {"downloadViaApi": True}}
    refused = await client.patch(url, json=on, headers=admin.headers)
    assert refused.status_code == 403, refused.text
    assert (await client.get(url, headers=admin.headers)).json()["settings"] == {
        "downloadViaApi": False
    }
    switched = await client.patch(url, json=on, headers=as_creator)
    assert switched.status_code == 200, switched.text
    assert (await client.get(url, headers=admin.headers)).json()["settings"] == {
        "downloadViaApi": True
    }


async def test_a_revocation_on_one_project_leaves_the_same_grants_on_another(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """A revocation names its project: the same user's direct role and the same team's grant
    on another project stay as they were."""
    first = await make_matter(client, db, operator)
    second = await make_matter(client, db, operator)
    h = operator.headers
    team = (await client.post("/api/v1/teams", json={"name": "Shared"}, headers=h)).json()["id"]
    added = await client.put(f"/api/v1/teams/{team}/users/{first.outsider.email}", headers=h)
    assert added.status_code == 200, added.text
    granted = await client.put(
        second.url(f"/users/{first.reader.email}"), json={"role": "Read Only"}, headers=h
    )
    assert granted.status_code == 200, granted.text
    for m in (first, second):
        both = await client.put(m.url(f"/teams/{team}"), json={"role": "Read Write"}, headers=h)
        assert both.status_code == 200, both.text

    gone = await client.delete(first.url(f"/users/{first.reader.email}"), headers=h)
    assert gone.status_code == 204, gone.text
    gone = await client.delete(first.url(f"/teams/{team}"), headers=h)
    assert gone.status_code == 204, gone.text
    for actor in (first.reader, first.outsider):
        assert (await client.get(first.url(), headers=actor.headers)).status_code == 404

    kept = await client.get(second.url(), headers=first.reader.headers)
    assert kept.status_code == 200 and kept.json()["role"] == "Read Only", kept.text
    via_team = await client.get(second.url(), headers=first.outsider.headers)
    assert via_team.status_code == 200 and via_team.json()["role"] == "Read Write", via_team.text
    teams = await client.get(second.url("/teams"), headers=h)
    assert [(t["id"], t["role"]) for t in teams.json()] == [(team, "Read Write")]


async def test_revoking_a_grant_that_does_not_exist_is_404_and_a_team_role_stays(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """DELETE removes a direct grant or a team's grant; a user who holds their role through a
    team only, or a team without a grant here, is a 404 and nothing changes."""
    h = operator.headers
    team = (await client.post("/api/v1/teams", json={"name": "Via"}, headers=h)).json()["id"]
    other = (await client.post("/api/v1/teams", json={"name": "None"}, headers=h)).json()["id"]
    await client.put(f"/api/v1/teams/{team}/users/{matter.outsider.email}", headers=h)
    granted = await client.put(matter.url(f"/teams/{team}"), json={"role": "Read Write"}, headers=h)
    assert granted.status_code == 200, granted.text

    no_direct = await client.delete(matter.url(f"/users/{matter.outsider.email}"), headers=h)
    assert no_direct.status_code == 404, no_direct.text
    assert "no direct role" in no_direct.json()["detail"]
    no_grant = await client.delete(matter.url(f"/teams/{other}"), headers=h)
    assert no_grant.status_code == 404, no_grant.text
    assert f"Team {other} has no role" in no_grant.json()["detail"]

    kept = await client.get(matter.url(), headers=matter.outsider.headers)
    assert kept.status_code == 200 and kept.json()["role"] == "Read Write"
    teams = await client.get(matter.url("/teams"), headers=h)
    assert [(t["id"], t["role"]) for t in teams.json()] == [(team, "Read Write")]
