"""Search through the API on the real database: the language on a small corpus of real
files (the same answers on SQLite and PostgreSQL), snippets, filters, paging, versions."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest
from sqlalchemy import insert

from casefolio.db.engine import Database
from casefolio.db.models import FieldValue
from casefolio.domain.pages import encode_cursor
from casefolio.search import service
from casefolio.search.index import Indexer
from tests.factories import Actor
from tests.search import files
from tests.search.conftest import (
    Matter,
    index_all,
    make_matter,
    replace,
    search,
    titles,
    upload,
)

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
async def corpus(client: httpx.AsyncClient, matter: Matter, indexer: Indexer) -> Matter:
    w, p = matter.writer, matter.id
    await upload(
        client, w, p, "a.txt", b"The indemnity cap is ten million pounds. Caf\xc3\xa9 notes."
    )
    await upload(
        client,
        w,
        p,
        "b.pdf",
        files.pdf("Indemnity for breach;", "the cap applies per claim."),
        "application/pdf",
    )
    await upload(
        client, w, p, "c.docx", files.docx("Letter before action about the escrow."), DOCX_TYPE
    )
    mail = files.eml(
        subject="Draft indemnity", body="Draft memo on the cap.", attachment="schedule.pdf"
    )
    await upload(client, w, p, "d.eml", mail, "message/rfc822")
    note = "Über die Gebühren; an indemnification clause.".encode("cp1252")
    await upload(client, w, p, "e.txt", note, "text/plain")
    site = "Site visit on ΟΔΟΣ \u0395\u03a1\u039c\u039f\u03a5, İSTANBUL office.".encode()
    await upload(client, w, p, "f.txt", site, "text/plain")
    assert await index_all(indexer) >= 6
    return matter


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("indemnity cap", {"a.txt", "b.pdf", "d.eml"}),
        ('"indemnity cap"', {"a.txt"}),
        ('"cap indemnity"', set()),
        ("indemnity -draft", {"a.txt", "b.pdf"}),
        ('indemnity -"ten million"', {"b.pdf", "d.eml"}),
        ("escrow OR gebühren", {"c.docx", "e.txt"}),
        ("escrow OR GEBUHREN", {"c.docx", "e.txt"}),
        ("indemn*", {"a.txt", "b.pdf", "d.eml", "e.txt"}),
        ("cafe", {"a.txt"}),
        ("CAFÉ", {"a.txt"}),
        ("schedule", {"d.eml"}),
        ("ada", {"d.eml"}),
        ("memo cap -million", {"d.eml"}),
        ("letter or", set()),  # lower-case `or` is a word, and no document has it
        ("nothing-here", set()),
        # Words as the document has them, in letters Python lowers otherwise than
        # PostgreSQL (a final Σ, İ): PostgreSQL found no ΟΔΟΣ while it was lowered here.
        ("ΟΔΟΣ", {"f.txt"}),
        ('"ΟΔΟΣ \u0395\u03a1\u039c\u039f\u03a5"', {"f.txt"}),
        ("İSTANBUL", {"f.txt"}),
        ("İstanbul", {"f.txt"}),
        ("ΟΔ*", {"f.txt"}),
    ],
)
async def test_the_language_on_a_corpus_of_real_files(
    client: httpx.AsyncClient, corpus: Matter, q: str, expected: set[str]
) -> None:
    assert await titles(client, corpus.reader, q) == expected


async def test_hits_carry_project_folder_version_score_and_an_escaped_snippet(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    # Another folder first, so that the hit's folder's id is not its project's.
    for name in ("Correspondence", "Pleadings"):
        folder = await client.post(
            matter.url("/folders"), json={"name": name}, headers=matter.writer.headers
        )
        assert folder.status_code == 201, folder.text
    assert folder.json()["id"] != str(matter.id)
    doc = await upload(
        client, matter.writer, matter.id, "x.txt", b"<script>alert(1)</script> the indemnity cap"
    )
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder.json()['id']}"),
        headers=matter.writer.headers,
    )
    assert moved.status_code == 200, moved.text
    await index_all(indexer)
    found = await search(client, matter.reader, "indemnity")
    assert found.status_code == 200, found.text
    [hit] = found.json()
    assert hit["document"]["id"] == doc["id"]
    assert hit["project"] == {"id": str(matter.id), "name": "Smith v Jones"}
    assert hit["folder"] == {"id": folder.json()["id"], "name": "Pleadings"}
    assert hit["version"]["id"] == doc["currentVersion"]["id"]
    assert hit["score"] > 0
    assert "<mark>indemnity</mark>" in hit["snippet"]
    # Text is escaped (PostgreSQL's ts_headline drops what looks like a tag altogether).
    assert "<script>" not in hit["snippet"]


async def test_no_snippet_where_the_project_keeps_its_content_in(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, indexer: Indexer
) -> None:
    open_doc = await upload(client, matter.writer, matter.id, "open.txt", b"the escrow terms")
    closed = await client.post(
        "/api/v1/projects",
        json={"name": "Privileged", "settings": {"downloadViaApi": False}},
        headers=operator.headers,
    )
    closed_id = closed.json()["id"]
    granted = await client.put(
        f"/api/v1/projects/{closed_id}/users/{matter.writer.email}",
        json={"role": "Read Write"},
        headers=operator.headers,
    )
    assert granted.status_code in (200, 201, 204), granted.text
    closed_doc = await upload(client, matter.writer, closed_id, "closed.txt", b"escrow secrets")
    await index_all(indexer)

    found = await search(client, matter.writer, "escrow")
    assert found.status_code == 200, found.text
    snippets = {hit["document"]["id"]: hit["snippet"] for hit in found.json()}
    # Both are found (a listing shows as much); only the open project's text is quoted.
    assert set(snippets) == {open_doc["id"], closed_doc["id"]}
    assert "<mark>escrow</mark>" in snippets[open_doc["id"]]
    assert snippets[closed_doc["id"]] == ""
    older = await search(client, matter.writer, "secrets", versions="all")
    assert [hit["snippet"] for hit in older.json()] == [""]


async def test_paging_is_keyset_and_stable(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    for n in range(7):
        text = "escrow " * (n % 3 + 1) + f"filler words number {n}"
        await upload(client, matter.writer, matter.id, f"p{n}.txt", text.encode())
    await index_all(indexer)
    seen: list[tuple[float, str]] = []
    url = "/api/v1/search?q=escrow&limit=3"
    pages = 0
    while url:
        page = await client.get(url, headers=matter.reader.headers)
        assert page.status_code == 200, page.text
        seen += [(hit["score"], hit["version"]["id"]) for hit in page.json()]
        pages += 1
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert pages == 3 and len(seen) == 7 and len({v for _, v in seen}) == 7
    assert [s for s, _ in seen] == sorted((s for s, _ in seen), reverse=True)
    # The same walk again gives the same order.
    again = (await search(client, matter.reader, "escrow", limit=7)).json()
    assert [(h["score"], h["version"]["id"]) for h in again] == seen


async def test_versions_all_finds_older_versions(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    doc = await upload(client, matter.writer, matter.id, "v.txt", b"original alpha wording")
    await replace(client, matter.writer, matter.id, doc["id"], "v2.txt", b"amended beta wording")
    await index_all(indexer)
    assert await titles(client, matter.reader, "alpha") == set()
    assert await titles(client, matter.reader, "beta") == {"v2.txt"}
    old = (await search(client, matter.reader, "alpha", versions="all")).json()
    assert [(h["document"]["id"], h["version"]["number"]) for h in old] == [(doc["id"], 1)]
    assert old[0]["document"]["currentVersion"]["number"] == 2


async def test_filters_project_folder_field_and_date(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer, operator: Actor
) -> None:
    field = await client.post(
        matter.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=matter.admin.headers,
    )
    one = await upload(client, matter.writer, matter.id, "one.txt", b"retainer letter")
    two = await upload(client, matter.writer, matter.id, "two.txt", b"retainer invoice")
    # The same value in another field of the other document: not a match of this field.
    other_field = await client.post(
        matter.url("/fields"),
        json={"name": "Reviewer", "type": "text"},
        headers=matter.admin.headers,
    )
    for doc, in_field in ((one, field), (two, other_field)):
        set_value = await client.put(
            matter.url(f"/documents/{doc['id']}/fields/{in_field.json()['id']}"),
            json={"value": "J. Smith"},
            headers=matter.writer.headers,
        )
        assert set_value.status_code == 200, set_value.text
    folder = await client.post(
        matter.url("/folders"), json={"name": "Engagement"}, headers=matter.writer.headers
    )
    folder_id = folder.json()["id"]
    moved = await client.put(
        matter.url(f"/documents/{one['id']}/{folder_id}"), headers=matter.writer.headers
    )
    assert moved.status_code == 200, moved.text
    await index_all(indexer)
    reader = matter.reader
    assert await titles(client, reader, "retainer", projectId=matter.id) == {"one.txt", "two.txt"}
    assert await titles(client, reader, "retainer", folderId=folder_id) == {"one.txt"}
    in_folder = await client.get(
        matter.url(f"/documents/folder/{folder_id}"),
        params={"q": "retainer"},
        headers=reader.headers,
    )
    assert in_folder.status_code == 200, in_folder.text
    assert [d["currentVersion"]["fileName"] for d in in_folder.json()] == ["one.txt"]
    by_field = {"fieldId": field.json()["id"], "fieldValue": "J. Smith"}
    assert await titles(client, reader, "retainer", **by_field) == {"one.txt"}
    assert await titles(client, reader, "retainer", afterDate="2999-01-01") == set()
    alone = await search(client, reader, "retainer", fieldId=field.json()["id"])
    assert alone.status_code == 400 and "fieldValue" in alone.text
    listed = await client.get(
        matter.url("/documents"), params={"q": "invoice"}, headers=reader.headers
    )
    assert listed.status_code == 200, listed.text
    assert [d["currentVersion"]["fileName"] for d in listed.json()] == ["two.txt"]


async def test_a_choice_is_set_and_found_by_any_spelling_of_its_name(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    """A choice made decomposed (as a Mac sends `é`), set and found in the composed form: the
    value was refused ("expected one of: Privilégié") and found nothing."""
    decomposed = "Privile\u0301gie\u0301"
    field = await client.post(
        matter.url("/fields"),
        json={"name": "Privilege", "type": "choice", "choices": [decomposed, "None"]},
        headers=matter.admin.headers,
    )
    assert field.status_code == 201, field.text
    one = await upload(client, matter.writer, matter.id, "one.txt", b"retainer letter")
    set_value = await client.put(
        matter.url(f"/documents/{one['id']}/fields/{field.json()['id']}"),
        json={"value": "Privil\u00e9gi\u00e9"},
        headers=matter.writer.headers,
    )
    assert set_value.status_code == 200, set_value.text
    # As the choice is stored: composed, as names are.
    assert set_value.json()["fields"][0]["value"] == "Privil\u00e9gi\u00e9"
    await index_all(indexer)
    for sent in (decomposed, "Privil\u00e9gi\u00e9"):
        by_field = {"fieldId": field.json()["id"], "fieldValue": sent}
        assert await titles(client, matter.reader, "retainer", **by_field) == {"one.txt"}


async def test_compatibility_forms_and_decomposed_accents_fold_on_both_databases(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    """PDFs' text spells "fi" as the ligature U+FB01: PostgreSQL's unaccent folded it, SQLite's
    tokenizer kept "\ufb01nancial" a word of its own, which "financial" did not find. A
    decomposed accent (as a Mac writes it) was found on SQLite only."""
    content = "the \ufb01nancial \ufb02ows of the cafe\u0301"
    await upload(client, matter.writer, matter.id, "report.txt", content.encode())
    await index_all(indexer)
    for typed in (
        "financial flows",
        "\ufb01nancial",
        "\uff46\uff4c\uff4f\uff57\uff53",  # full-width "flows"
        "caf\u00e9",
        "cafe",
        '"flows of the cafe\u0301"',
    ):
        assert await titles(client, matter.reader, typed) == {"report.txt"}, typed


async def test_chinese_and_japanese_words_are_found_inside_sentences_on_both_databases(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    """Chinese and Japanese are written without spaces: a sentence was one word to both
    tokenizers, found only by typing it whole. Each character is now a word, and a word
    typed is the phrase of its characters."""
    japanese = "東京地方裁判所に訴状を提出した。カタカナのテスト"
    chinese = "本合同由甲方和乙方签订\uff0c第3条规定了违约责任。"  # a full-width comma
    mixed = "ABC株式会社の契約書 한국어 문서"
    for name, text in (("ja.txt", japanese), ("zh.txt", chinese), ("mixed.txt", mixed)):
        await upload(client, matter.writer, matter.id, name, text.encode())
    await index_all(indexer)
    for typed, expected in (
        ("裁判所", {"ja.txt"}),
        ("訴状 提出", {"ja.txt"}),
        ("テスト", {"ja.txt"}),
        ("ｶﾀｶﾅ", {"ja.txt"}),  # half-width katakana, folded as the text is
        ("合同", {"zh.txt"}),
        ("第3条", {"zh.txt"}),
        ("违约责任", {"zh.txt"}),
        ("株式会社", {"mixed.txt"}),
        ("ABC", {"mixed.txt"}),
        ("ABC株式", {"mixed.txt"}),
        ("한국어", {"mixed.txt"}),  # Hangul is written with spaces: words as they stand
        ("한국", set()),  # ...and not split
        ("한국*", {"mixed.txt"}),
        ("裁判*", {"ja.txt"}),  # a prefix of one character is the character
        ("所裁判", set()),  # the characters, but not in that order
        ("合同 -违约", set()),
        ('"方裁判" OR 株式', {"ja.txt", "mixed.txt"}),
    ):
        assert await titles(client, matter.reader, typed) == expected, typed
    [hit] = (await search(client, matter.reader, "裁判所")).json()
    assert "<mark>裁判所</mark>" in hit["snippet"], hit["snippet"]
    assert "東京地方" in hit["snippet"] and "\x01" not in hit["snippet"]


async def test_a_text_value_is_found_by_either_unicode_form(
    client: httpx.AsyncClient, db: Database, matter: Matter, indexer: Indexer
) -> None:
    """A text value set decomposed (as a Mac sends `é`) is stored composed; a search by the
    other form found nothing. A value stored decomposed before that is found too."""
    composed, decomposed = "Cl\u00e9ment", "Cle\u0301ment"
    field = await client.post(
        matter.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=matter.admin.headers,
    )
    assert field.status_code == 201, field.text
    field_id = field.json()["id"]
    one = await upload(client, matter.writer, matter.id, "one.txt", b"retainer letter")
    old = await upload(client, matter.writer, matter.id, "old.txt", b"retainer memo")
    set_value = await client.put(
        matter.url(f"/documents/{one['id']}/fields/{field_id}"),
        json={"value": decomposed},
        headers=matter.writer.headers,
    )
    assert set_value.status_code == 200, set_value.text
    assert set_value.json()["fields"][0]["value"] == composed
    async with db.write() as session:  # as a value set before values were composed
        await session.execute(
            insert(FieldValue).values(
                document_id=int(old["id"]), field_id=int(field_id), value=decomposed
            )
        )
    await index_all(indexer)
    for sent in (decomposed, composed):
        by_field = {"fieldId": field_id, "fieldValue": sent}
        assert await titles(client, matter.reader, "retainer", **by_field) == {"one.txt", "old.txt"}


async def test_a_number_field_matches_the_same_numbers_on_both_databases(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    field = await client.post(
        matter.url("/fields"),
        json={"name": "Amount", "type": "number"},
        headers=matter.admin.headers,
    )
    field_id = field.json()["id"]
    stored = [1e300, 1e-7, 0.1, 123, 1e22, -2.5]
    for n, number in enumerate(stored):
        doc = await upload(client, matter.writer, matter.id, f"n{n}.txt", b"ledger entry")
        answer = await client.put(
            matter.url(f"/documents/{doc['id']}/fields/{field_id}"),
            json={"value": number},
            headers=matter.writer.headers,
        )
        assert answer.status_code == 200, answer.text
    await index_all(indexer)
    spellings = [
        ("1e300", "n0.txt"),
        ("1E+300", "n0.txt"),
        ("0.0000001", "n1.txt"),
        ("0.1", "n2.txt"),
        ("123.0", "n3.txt"),
        ("1e22", "n4.txt"),
        ("-2.5", "n5.txt"),
    ]
    for spelled, name in spellings:
        found = await titles(client, matter.reader, "ledger", fieldId=field_id, fieldValue=spelled)
        assert found == {name}, spelled
    assert await titles(client, matter.reader, "ledger", fieldId=field_id, fieldValue="7") == set()


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("x" * 501, "at most 500"),
        ('"unclosed phrase', "closing quote"),
        ("-only -excluded", "needs a word to find"),
        ("OR tail", "OR needs words"),
        ("a*", "at least 2"),
        ("!!!", "at least one word"),
    ],
)
async def test_a_bad_query_is_a_400_that_says_why(
    client: httpx.AsyncClient, matter: Matter, q: str, says: str
) -> None:
    answer = await search(client, matter.reader, q)
    assert answer.status_code == 400, answer.text
    assert says in answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_bad_cursor_is_a_400(client: httpx.AsyncClient, matter: Matter) -> None:
    answer = await search(client, matter.reader, "word", cursor="bm90LWEtY3Vyc29y")
    assert answer.status_code == 400 and "cursor" in answer.text


@pytest.mark.parametrize("score", ["0x1p99999", "-0x1p2000", "inf", "nan", "0x1.8p"])
async def test_a_cursor_whose_score_is_no_finite_float_is_a_400(
    client: httpx.AsyncClient, matter: Matter, score: str
) -> None:
    # A cursor is the score's hex and a version id: a hex past the floats overflows.
    cursor = encode_cursor((score, 1))
    answer = await search(client, matter.reader, "word", cursor=cursor)
    assert answer.status_code == 400, answer.text
    assert "cursor is not valid" in answer.text


def test_a_snippet_is_escaped_html_with_marks() -> None:
    from casefolio.search.extract import MARK_END, MARK_START
    from casefolio.search.hits import _marked

    raw = f"<b>x</b> & the {MARK_START}cap{MARK_END}\n  end"
    assert _marked(raw) == "&lt;b&gt;x&lt;/b&gt; &amp; the <mark>cap</mark> end"


async def test_at_most_rank_candidates_matches_are_ranked_after_access_and_filters(
    client: httpx.AsyncClient,
    db: Database,
    operator: Actor,
    matter: Matter,
    indexer: Indexer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "RANK_CANDIDATES", 3)
    other = await make_matter(client, db, operator)
    ours = []
    for n in range(5):
        # Another project's matches in between: the cap counts only what the caller reads.
        await upload(client, other.writer, other.id, f"theirs{n}.txt", b"escrow elsewhere")
        doc = await upload(client, matter.writer, matter.id, f"o{n}.txt", b"escrow " * (n + 1))
        ours.append(doc["currentVersion"]["fileName"])
    await upload(client, matter.writer, matter.id, "x.txt", b"no match here")
    await index_all(indexer)
    seen: list[str] = []
    url = "/api/v1/search?q=escrow&limit=2"
    while url:
        page = await client.get(url, headers=matter.reader.headers)
        assert page.status_code == 200, page.text
        seen += [hit["document"]["currentVersion"]["fileName"] for hit in page.json()]
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert len(seen) == 3 and len(set(seen)) == 3 and set(seen) <= set(ours)
    # Best first among the candidates, as without the cap.
    scores = [h["score"] for h in (await search(client, matter.reader, "escrow")).json()]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    # Filters come before the cap too: one folder's single match is found.
    folder = await client.post(
        matter.url("/folders"), json={"name": "Deals"}, headers=matter.writer.headers
    )
    doc = await upload(client, matter.writer, matter.id, "deal.txt", b"escrow deal")
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder.json()['id']}"),
        headers=matter.writer.headers,
    )
    assert moved.status_code == 200, moved.text
    await index_all(indexer)
    in_folder = await titles(client, matter.reader, "escrow", folderId=folder.json()["id"])
    assert in_folder == {"deal.txt"}
    # Without the cap every match is found.
    monkeypatch.setattr(service, "RANK_CANDIDATES", 1000)
    assert await titles(client, matter.reader, "escrow", limit=100) == {*ours, "deal.txt"}


async def test_a_search_leaves_its_connection_settings_as_they_were(
    db: Database, operator: Actor, corpus: Matter
) -> None:
    """PostgreSQL: the bitmap memory a search sets (SEARCH_WORK_MEM) lasts for its statement
    only; the pooled connection it ran on keeps the server's work_mem."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("work_mem is PostgreSQL's")
    from sqlalchemy import text

    from casefolio.domain.principal import Principal

    who = Principal(operator.user_id, operator.email, "Operator", True)
    async with db.read() as session:
        before = (await session.execute(text("SHOW work_mem"))).scalar_one()
        assert before != service.SEARCH_WORK_MEM
        phrase, words = {"a.txt"}, {"a.txt", "b.pdf", "d.eml"}
        for q, expected in (('"indemnity cap"', phrase), ("indemnity cap", words)):
            page = await service.search(session, who, service.Search(q=q))
            assert {h.version.file_name for h in page.items} == expected
            assert (await session.execute(text("SHOW work_mem"))).scalar_one() == before


async def test_a_slow_snippet_leaves_the_server_answering_meanwhile(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    """Snippets of long texts full of the searched word are seconds of work (SQLite's
    snippet(), PostgreSQL's ts_headline); other requests go on being answered meanwhile
    (SQLite's ran on the event loop and held every request of the process)."""
    text = b"the court held that the claim fails. " * 60_000  # 2.2 MB, the word 360,000 times
    for i in range(2):
        await upload(client, matter.writer, matter.id, f"long-{i}.txt", text)
    await index_all(indexer)
    started = time.monotonic()
    searching = asyncio.ensure_future(search(client, matter.reader, "the"))
    answers = [started]
    while not searching.done():
        health = await client.get("/health")
        assert health.status_code == 200
        answers.append(time.monotonic())
    found = await searching
    answers.append(time.monotonic())
    assert found.status_code == 200 and len(found.json()) == 2
    assert all("<mark>" in hit["snippet"] for hit in found.json())
    # Measured against the search itself, not a clock's figure: on the event loop, the
    # snippets were one wait that took most of the search (no answer at all meanwhile).
    longest_wait = max(b - a for a, b in itertools.pairwise(answers))
    assert longest_wait < (answers[-1] - started) / 2, (longest_wait, len(answers))
