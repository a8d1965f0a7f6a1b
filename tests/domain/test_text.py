from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casefolio.domain import text
from casefolio.domain.errors import Invalid


def test_a_name_is_stripped_and_may_be_as_long_as_its_column() -> None:
    longest = "n" * text.MAX_NAME
    assert text.required_name(longest, of="team") == longest
    assert text.required_name(f"  {longest[4:]}\t", of="team") == longest[4:]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (" \t ", "A team needs a name."),
        ("n" * (text.MAX_NAME + 1), f"A team's name must be 1 to {text.MAX_NAME} characters."),
    ],
)
def test_an_empty_or_overlong_name_is_refused_saying_which(name: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        text.required_name(name, of="team")
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("value", "why"),
    [("Smith\udcffJones", "lone surrogate (U+DCFF)"), ("a\x00b", "NUL character (U+0000)")],
)
def test_names_and_descriptions_that_cannot_be_stored_are_refused_saying_why(
    value: str, why: str
) -> None:
    # The APIs and the forms refuse such text at the door; the command line (an argument,
    # a directory's name in another encoding) reaches the domain with it.
    for check in (
        lambda: text.required_name(value, of="project"),
        lambda: text.stripped_name(value, limit=255, what="A folder name", field="name"),
        lambda: text.bounded_description(value),
    ):
        with pytest.raises(Invalid) as refused:
            check()
        assert why in refused.value.message


def test_a_byte_that_is_not_utf8_is_named_as_such() -> None:
    problem = text.unstorable("Schrifts\udce4tze")
    assert problem is not None and "the byte 0xE4 of a name that is not UTF-8" in problem
    assert "the byte" not in (text.unstorable("\ud800") or "")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        # Spelled with a joiner or a non-joiner: removing it changes the word or the emoji.
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",)
        * 2,  # Persian "I want", spelled with a ZWNJ
        ("\U0001f469\u200d\u2695\ufe0f.txt", "\U0001f469\u200d\u2695\ufe0f.txt"),  # health worker
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f.txt",) * 2,
        # Hiding something: gone.
        ("pay\u200dpal.txt", "paypal.txt"),  # between ASCII letters
        ("\u200d\u0645.txt", "\u0645.txt"),  # leading
        ("\u0645\u200d \u0645.txt", "\u0645 \u0645.txt"),  # next to a space
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a bidi override
        ("a\U000e0067b.txt", "ab.txt"),  # a tag that follows no flag
    ],
)
def test_a_file_name_keeps_what_is_part_of_what_is_seen(sent: str, kept: str) -> None:
    assert text.visible(sent) == kept


@pytest.mark.parametrize(
    ("name", "limit", "shortened"),
    [
        ("a" * 9 + "e\u0301" * 3 + ".txt", 14, "a" * 9 + ".txt"),  # not an accent's letter alone
        (
            "ab" + "\U0001f1e9\U0001f1ea" * 3 + ".txt",
            9,
            "ab\U0001f1e9\U0001f1ea.txt",
        ),  # whole flags
        ("abcd\U0001f44d\U0001f3fd.txt", 9, "abcd.txt"),  # not a thumb without its skin tone
        ("abcdefgh.txt", 9, "abcde.txt"),
    ],
)
def test_a_long_file_name_is_cut_between_what_shows_as_characters(
    name: str, limit: int, shortened: str
) -> None:
    assert text.shorten_file_name(name, limit) == shortened


_NAME_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
# The characters the rule is about, mixed in often enough to meet them.
_EDGES = st.sampled_from(
    list(" \t\n\r\x0b\x1c\x85\xa0\xad\u180e\u200b\u200d\u2028\u2029\u202e\u2066\u3000\ufeffa/é")
)


@given(st.lists(st.one_of(_NAME_CHARS, _EDGES), max_size=12).map("".join))
@settings(max_examples=2000, deadline=None)
def test_the_one_line_pattern_accepts_exactly_the_names_the_server_keeps(value: str) -> None:
    try:
        text.stripped_name(value, limit=1000, what="A name", field="name")
        kept = True
    except Invalid:
        kept = False
    assert bool(re.search(text.one_line_pattern(), value)) == kept


@pytest.mark.parametrize("value", ["Minutes\nDraft", "a\u2028b", "invoice\u202efdp.exe", "\t"])
def test_a_name_on_more_than_one_line_or_reordered_is_refused(value: str) -> None:
    with pytest.raises(Invalid, match=r"a name is one line, without control characters|1 to 200"):
        text.stripped_name(value, limit=200, what="A name", field="name")


def test_a_name_is_bounded_as_sent_as_the_openapi_documents_max_length_counts() -> None:
    assert text.stripped_name(" a ", limit=3, what="A name", field="name") == "a"
    with pytest.raises(Invalid, match="1 to 3 characters"):
        text.stripped_name("a   ", limit=3, what="A name", field="name")


def test_a_name_is_trimmed_of_what_shows_as_nothing_at_its_ends() -> None:
    name = text.stripped_name("\ufeffPleadings\u200b", limit=200, what="A name", field="name")
    assert name == "Pleadings"
    assert text.stripped_name("Zoë\u200dX", limit=200, what="A name", field="name") == "Zoë\u200dX"
    with pytest.raises(Invalid, match="1 to 200 characters"):
        text.stripped_name("\u200b\u2060", limit=200, what="A name", field="name")
