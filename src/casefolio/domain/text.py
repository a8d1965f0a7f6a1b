"""Text casefolio can store: one rule for both databases, and the limits on every stored text.

PostgreSQL cannot store U+0000 in a text column, and neither database can store a lone
surrogate (text that is not valid Unicode). Both are refused everywhere, on SQLite too, so
that whatever one installation holds can be exported to the other.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from casefolio.domain.errors import Invalid

#: The limits, in characters, of the texts the API stores (docs/api.md, docs/api-v3.md).
MAX_NAME = 200  # users, teams, projects, templates, fields, tokens
MAX_EMAIL = 320
MAX_FOLDER_NAME = 255
MAX_TITLE = 255  # documents (/api/v3 allows 60, as OpenProject does)
MAX_DESCRIPTION = 100_000  # projects, templates, documents, versions (attachments)
MAX_WEBHOOK_DESCRIPTION = 2000
MAX_FILE_NAME = 255  # longer names are shortened, keeping their extension
MAX_FILE_NAME_INPUT = 4096  # what a request may send before it is shortened
MAX_CONTENT_TYPE = 255
MAX_CHOICE = 200  # one choice of a choice field
MAX_CHOICES = 1000  # choices per field
MAX_FIELD_TEXT = 10_000  # a text field's value

#: The error type under which the HTTP layer reports unstorable text.
UNSTORABLE = "unstorable_text"
#: A JSON Schema pattern (ECMA-262) for one character str.strip() keeps: not white space as
#: ECMA-262's \s has it, nor the separators U+001C to U+001F and U+0085 Python adds.
NOT_SPACE = r"[^\s\x1c-\x1f\x85]"
#: What a one-line name cannot hold (`stripped_name`), as a regular expression's character
#: class body: C0 and C1 controls, the line and paragraph separators, bidi controls.
_NOT_IN_A_NAME = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
#: Characters that show as nothing (a soft hyphen, zero-width spaces and joiners, a word
#: joiner, a byte order mark): trimmed from a name's ends as white space is, so that no name
#: is made of them alone, nor looks like another by one at its end.
_INVISIBLE = r"\u00ad\u180e\u200b-\u200d\u2060\ufeff"
_NAME_ENDS = re.compile(f"^[\\s{_INVISIBLE}]+|[\\s{_INVISIBLE}]+$")


def one_line_pattern(also_not: str = "") -> str:
    """A JSON Schema pattern for what `stripped_name` keeps of a one-line name: white space
    at either end (stripped), and between, at least one character and none it cannot hold
    (nor any of `also_not`, a character class body)."""
    inner = f"[^{_NOT_IN_A_NAME}{also_not}]"
    edge = f"[^\\s{_NOT_IN_A_NAME}{_INVISIBLE}{also_not}]"
    space = f"[\\s\\x1c-\\x1f\\x85{_INVISIBLE}]"
    return f"^{space}*{edge}(?:{inner}*{edge})?{space}*$"


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Bidi overrides and other invisible format characters, C0/C1 controls, lone surrogates.
_HIDDEN = frozenset(("Cc", "Cf", "Cs"))
_EXTENSION = re.compile(r"\.[^.\s]{1,32}$")


def unstorable(value: str) -> str | None:
    """Given a text, return why it cannot be stored (a NUL, a lone surrogate), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000), which cannot be stored"
    code = ord(found.group())
    problem = f"contains a lone surrogate (U+{code:04X}), which is not valid Unicode"
    if 0xDC80 <= code <= 0xDCFF:
        # How Python reads a byte that is not UTF-8 in a file name or a command's argument.
        problem += f" (the byte 0x{code - 0xDC00:02X} of a name that is not UTF-8)"
    return problem


def storable(value: str, *, limit: int) -> str:
    """Given a text casefolio did not take from a request (a library's message about a
    file, which may quote it), return what both databases store of it: a NUL or a lone
    surrogate as U+FFFD, cut to `limit` characters (PostgreSQL refuses a longer varchar)."""
    return _UNSTORABLE.sub("\ufffd", value)[:limit]


#: How deeply JSON a request sends may nest (objects and arrays). The deepest JSON casefolio
#: reads (template folders) needs far less; deeper input would only cost stack and time.
MAX_JSON_DEPTH = 64
TOO_DEEP = f"is nested more than {MAX_JSON_DEPTH} levels deep"


def check_json(value: Any) -> tuple[str, str] | None:
    """Given parsed JSON (any str/dict/list tree), return its first problem as (dotted path,
    problem): text that cannot be stored, or nesting deeper than MAX_JSON_DEPTH; else None.
    The path is '' for the value itself. Iterative, so no input can exhaust the stack."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if (problem := unstorable(item)) is not None:
                return ".".join(path), problem
            continue
        if not isinstance(item, dict | list | tuple):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            return ".".join(path), TOO_DEEP
        if isinstance(item, dict):
            children = list(item.items())
            for key, _ in children:
                if (problem := unstorable(str(key))) is not None:
                    return ".".join((*path, "(key)")), problem
        else:
            children = list(enumerate(item))
        stack.extend((child, (*path, str(key))) for key, child in reversed(children))
    return None


#: Bidi embeddings, overrides and isolates reorder what follows them, so that a name can show
#: as another (`invoice\u202efdp.exe` reads "invoiceexe.pdf"); the line and paragraph
#: separators break a line as a line feed does.
_HIDDEN_IN_A_NAME = re.compile(f"[{_NOT_IN_A_NAME}]")


def stripped_name(value: str, *, limit: int, what: str, field: str, one_line: bool = True) -> str:
    """Given a name or title, return it stripped and in Unicode's composed form (NFC: the
    `é` a Mac may send as `e` and an accent is the one `é`); Invalid (naming `what`, the
    field `field`) if that leaves nothing, if it is longer than `limit` characters (as sent
    or stripped), if it cannot be stored, or (`one_line`) if it holds a control character
    (a line break, a tab, a bell), a line or paragraph separator, or a bidi control, which
    no one reading the name can see (`one_line_pattern` says the same to OpenAPI)."""
    if (problem := unstorable(value)) is not None:
        raise Invalid(f"{what} {problem}.", [{"field": field, "message": problem}])
    too_long = len(value) > limit  # as sent, as the OpenAPI document's maxLength counts
    trimmed = _NAME_ENDS.sub("", value) if one_line else value.strip()
    value = unicodedata.normalize("NFC", trimmed)
    if one_line and (hidden := _first_hidden(value)) is not None:
        message = f"contains U+{ord(hidden):04X}: a name is one line, without control characters"
        raise Invalid(f"{what} {message}.", [{"field": field, "message": message}])
    if not value or too_long or len(value) > limit:
        raise Invalid(
            f"{what} must be 1 to {limit} characters.",
            [{"field": field, "message": "empty or too long"}],
        )
    return value


def as_stored(name: str) -> str:
    """Given a one-line name as a client sends it to find something by name, return it as
    `stripped_name` stores names (ends trimmed, NFC), so that the name something was made
    with finds it again (a Mac's decomposed `é`, a space at the end); no check: a name no
    one could have made finds nothing."""
    return unicodedata.normalize("NFC", _NAME_ENDS.sub("", name))


def _first_hidden(value: str) -> str | None:
    found = _HIDDEN_IN_A_NAME.search(value)
    return found.group() if found else None


def required_name(value: str, *, of: str, limit: int = MAX_NAME) -> str:
    """`stripped_name` for the name of a new or renamed thing (`of`: "project", "user",
    "token"), saying "A token needs a name." when there is none."""
    if not value.strip():
        raise Invalid(f"A {of} needs a name.", [{"field": "name", "message": "is empty"}])
    return stripped_name(value, limit=limit, what=f"A {of}'s name", field="name")


def bounded_description(value: str, *, limit: int = MAX_DESCRIPTION) -> str:
    """Given a description, return it; Invalid if it is longer than `limit` characters (the
    APIs' models say so first; forms and the CLI reach the domain without them), or if it
    cannot be stored."""
    if (problem := unstorable(value)) is not None:
        raise Invalid(f"A description {problem}.", [{"field": "description", "message": problem}])
    if len(value) > limit:
        raise Invalid(
            f"A description must be at most {limit:,} characters.",
            [{"field": "description", "message": "too long"}],
        )
    return value


def visible(value: str) -> str:
    """Given a text, return it without control, format (bidi overrides, zero-width) and
    surrogate characters: what a person reading a file name cannot see must not be in it.

    Kept, as parts of what is seen: a zero-width joiner or non-joiner between two non-ASCII
    characters (Persian `می‌خواهم` is spelled with one; `👩‍⚕️` is one emoji through one),
    and the tag characters of a subdivision flag (`🏴` and the tags of `gbsct`)."""
    kept: list[str] = []
    for i, c in enumerate(value):
        if _seen(kept, c, value[i + 1 : i + 2]):
            kept.append(c)
    return "".join(kept)


def _seen(kept: list[str], c: str, following: str) -> bool:
    if unicodedata.category(c) not in _HIDDEN:
        return True
    if c in _JOINERS:
        return _joins(kept, following)
    return _is_tag(c) and bool(kept) and (kept[-1] == _FLAG or _is_tag(kept[-1]))


_JOINERS = frozenset("\u200c\u200d")
_FLAG = "\U0001f3f4"  # a black flag, which tag characters make a subdivision's
_TAGS_START, _TAGS_END = "\U000e0020", "\U000e007f"


def _is_tag(c: str) -> bool:
    return _TAGS_START <= c <= _TAGS_END


def _joins(kept: list[str], following: str) -> bool:
    """Whether a joiner between the last kept character and the next one joins two visible
    non-ASCII characters (not a joiner next to a space, an ASCII letter or another joiner)."""
    if not kept or not following:
        return False
    before, after = kept[-1], following
    return (
        not before.isascii()
        and not after.isascii()
        and not before.isspace()
        and not after.isspace()
        and before not in _JOINERS
        and unicodedata.category(after) not in _HIDDEN
    )


def last_segment(name: str) -> str:
    """Given a file name that may be a path (either separator: browsers on Windows send
    `C:\\Users\\me\\brief.pdf`), return its last segment."""
    return re.split(r"[/\\]", name)[-1]


def split_extension(name: str) -> tuple[str, str]:
    """Given a file name, return the part before its extension and the extension (up to 32
    characters, with its dot; "" if it has none, and for a name that is only one: ".env")."""
    extension = _EXTENSION.search(name)
    if extension is None or extension.start() == 0:
        return name, ""
    return name[: extension.start()], extension.group()


def shorten_file_name(name: str, limit: int = MAX_FILE_NAME) -> str:
    """Given a file name, return it cut to `limit` characters, keeping its extension, and
    never inside what shows as one character (an accent off its letter, a skin tone off its
    emoji, half a flag)."""
    if len(name) <= limit:
        return name
    stem, extension = split_extension(name)
    end = limit - len(extension)
    while 0 < end < len(stem) and _continues(stem, end):
        end -= 1
    return stem[:end].rstrip() + extension


def _continues(text: str, at: int) -> bool:
    """Whether the character at `at` belongs to the one before it on screen."""
    c, before = text[at], text[at - 1]
    return (
        unicodedata.category(c) in ("Mn", "Me", "Mc")  # accents, enclosing marks
        or c in _JOINERS
        or before in _JOINERS
        or "\U0001f3fb" <= c <= "\U0001f3ff"  # skin tones
        or _is_tag(c)
        or (_is_regional(c) and _is_regional(before) and _regional_run(text, at) % 2 == 1)
    )


def _is_regional(c: str) -> bool:
    return "\U0001f1e6" <= c <= "\U0001f1ff"  # the letters flags are made of, in pairs


def _regional_run(text: str, at: int) -> int:
    """How many regional indicators stand just before `at`."""
    count = 0
    while at - count - 1 >= 0 and _is_regional(text[at - count - 1]):
        count += 1
    return count
