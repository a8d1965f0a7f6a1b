from __future__ import annotations

from typing import Any

import pytest

from casefolio.db.models import Field
from casefolio.domain import fields
from casefolio.domain.errors import Invalid


def _field(kind: str, **kw: Any) -> Field:
    return Field(
        id=1,
        project_id=1,
        name="F",
        type=kind,
        choices=kw.get("choices", []),
        required=kw.get("required", False),
    )


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("text", "abc", 5),
        ("number", 3.5, True),
        ("number", 7, "7"),
        ("boolean", False, 0),
        ("date", "2026-02-28", "2026-02-30"),
        ("date", "2026-02-28", "2026-2-1"),
        # Other ISO 8601 forms Python's date.fromisoformat takes: still not YYYY-MM-DD.
        ("date", "2026-01-05", "2026-W02-1"),
        ("date", "2026-01-05", "2026-005"),
    ],
)
def test_values_are_checked_against_the_type(kind: str, good: Any, bad: Any) -> None:
    row = _field(kind)
    assert fields.coerce(row, good) == good
    with pytest.raises(Invalid, match="Invalid value for field 'F'"):
        fields.coerce(row, bad)


def test_choice_and_required() -> None:
    row = _field("choice", choices=["A", "B"], required=True)
    assert fields.coerce(row, "A") == "A"
    with pytest.raises(Invalid, match="expected one of: A, B"):
        fields.coerce(row, "C")
    with pytest.raises(Invalid, match="required"):
        fields.coerce(row, None)


def test_a_choice_is_named_as_names_are_found() -> None:
    """A value in another Unicode form of a choice, or with white space at its ends, names it
    and is stored as the choice is spelled (it was refused: "expected one of: Privilégié",
    the same word to the eye); two choices that are one name so are refused."""
    decomposed = "Privile\u0301gie\u0301"
    row = _field("choice", choices=[decomposed, "None"])
    assert fields.coerce(row, "Privil\u00e9gi\u00e9") == decomposed
    assert fields.coerce(row, " None ") == "None"
    with pytest.raises(Invalid, match="expected one of"):
        fields.coerce(row, "none")
    for twins in (["\u00e9", "e\u0301"], ["x", "x\u200b"], ["a", "0", "\u00ad0"]):
        with pytest.raises(Invalid, match="Choices must be distinct") as refused:
            fields.check_spec(fields.FieldSpec("X", "choice", twins))
        later = len(twins)
        assert f"choice {later} reads as choice {later - 1}, " in str(refused.value)


def test_specs_are_checked() -> None:
    with pytest.raises(Invalid, match="Unknown field type"):
        fields.check_spec(fields.FieldSpec("X", "colour"))
    with pytest.raises(Invalid, match="Only choice fields"):
        fields.check_spec(fields.FieldSpec("X", "text", ["a"]))
    assert fields.check_spec(fields.FieldSpec(" X ", "choice", [" a ", "b"])).choices == ["a", "b"]
