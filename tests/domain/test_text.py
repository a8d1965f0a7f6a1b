from __future__ import annotations

import pytest

from casefolio.domain import text
from casefolio.domain.errors import Invalid


def test_a_name_is_stripped_and_may_be_as_long_as_its_column() -> None:
    longest = "n" * text.MAX_NAME
    assert text.required_name(f"  {longest}\t", of="team") == longest


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
