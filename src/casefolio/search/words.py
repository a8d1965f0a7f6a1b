"""Where words begin and end in Chinese and Japanese, written without spaces: each character
is a word of its own, for the index (extract.py) and the query (query.py) alike, so that a
word inside a sentence is found as the phrase of its characters. Neither database's
tokenizer splits such text (a run of it between spaces or punctuation was one word)."""

from __future__ import annotations

import re

#: Han ideographs (with the iteration marks), hiragana and katakana. Hangul is written with
#: spaces between words and is left to the tokenizers.
SPLIT_SCRIPTS = (
    "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
#: Put between such a character and a letter or digit next to it in the stored text: a
#: separator to both tokenizers (a control character), never part of a file's text
#: (extract.py replaces it), and taken out of snippets (hits.py).
WORD_BREAK = "\x01"

_LETTER = rf"[^\W_{SPLIT_SCRIPTS}]"
_SPLIT = rf"[{SPLIT_SCRIPTS}]"
_ANY = re.compile(_SPLIT)
_EDGE = re.compile(rf"(?<={_SPLIT})(?=[^\W_])|(?<={_LETTER})(?={_SPLIT})")
#: A word of a query: one such character, or a run of other letters and digits.
WORD = re.compile(rf"{_SPLIT}|{_LETTER}+")


def split(text: str) -> str:
    """`text` with WORD_BREAK before and after each such character next to a letter or digit."""
    # Looked for first: the substitution tries every position, and most texts have no such
    # character (bench/README.md).
    return _EDGE.sub(WORD_BREAK, text) if _ANY.search(text) else text


def is_split(word: str) -> bool:
    """Whether `word` (of WORD) is one such character."""
    return re.fullmatch(_SPLIT, word) is not None
