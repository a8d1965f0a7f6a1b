"""The search language, parsed once into a small tree and compiled for each database.

    indemnity cap          both words (AND)
    "indemnity cap"        the phrase: the words next to each other, in this order
    -draft                 not this word (or "-a phrase"); each part needs a word to find
    letter OR memo         either side (OR binds loosest: `a b OR c` is `(a b) OR c`)
    indemn*                words starting with `indemn` (at least MIN_PREFIX characters)

Words are runs of letters and digits, in any case and with or without accents (`Café`
finds `cafe`); anything else separates words, so `e-mail` is the phrase "e mail". Lower-case
`or` is a word. The same tree becomes an FTS5 MATCH expression on SQLite and a `to_tsquery`
expression on PostgreSQL (websearch_to_tsquery has no prefix search), from tokens that are
letters and digits only, so no input reaches either database's query syntax unquoted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from casefolio.domain.errors import Invalid
from casefolio.search import words

#: Longest query accepted, in characters.
MAX_QUERY_CHARS = 500
#: Most words and phrases in one query (excluded ones included).
MAX_TERMS = 20
#: Fewest characters before a `*`.
MIN_PREFIX = 2

# A quoted phrase (maybe unclosed), or a run of anything else up to a space or a quote.
_PIECE = re.compile(r'(-?)"([^"]*)("?)(\*?)|(\S+?)(?=\s|"|$)')


@dataclass(frozen=True)
class Term:
    """A word, or a phrase of several; `prefix`: its last word is the start of a word."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Clause:
    """Every `include` term, and none of the `exclude` terms."""

    include: tuple[Term, ...]
    exclude: tuple[Term, ...] = ()


@dataclass(frozen=True)
class Query:
    """Any of its clauses (OR)."""

    clauses: tuple[Clause, ...]


def _invalid(message: str) -> Invalid:
    return Invalid(message, [{"field": "q", "message": message}])


def parse(text: str) -> Query:
    """Given what a user typed, return its tree, or raise Invalid saying what is wrong."""
    if len(text) > MAX_QUERY_CHARS:
        raise _invalid(f"A search query may have at most {MAX_QUERY_CHARS} characters.")
    text = unicodedata.normalize("NFKC", text)  # as extract.py folds the texts searched
    clauses: list[Clause] = []
    include: list[Term] = []
    exclude: list[Term] = []
    terms = 0
    seen_or = False

    def close_clause() -> None:
        if not include:
            if exclude:
                raise _invalid(
                    "Each part of a query needs a word to find, not only -excluded ones."
                )
            raise _invalid("OR needs words to find on both sides.")
        clauses.append(Clause(tuple(include), tuple(exclude)))
        include.clear()
        exclude.clear()

    for match in _PIECE.finditer(text):
        negated, phrase, closing, star, bare = match.groups()
        if bare == "OR":
            close_clause()
            seen_or = True
            continue
        if bare is not None:
            negated = "-" if bare.startswith("-") else ""
            body = bare[1:] if negated else bare
            star = "*" if body.endswith("*") else ""
        else:
            if not closing:
                raise _invalid('A phrase is missing its closing quote (").')
            body = phrase
        # As typed: each database folds case as it indexed the text (Python's lower() is
        # not PostgreSQL's: a final Σ, İ), and a quoted token is no operator in either.
        tokens = tuple(words.WORD.findall(body))
        if not tokens:
            continue  # punctuation alone: nothing to find
        if star and words.is_split(tokens[-1]):
            star = ""  # a word of one character: no longer words begin with it
        if star and len(tokens[-1]) < MIN_PREFIX:
            raise _invalid(f"A prefix search (word*) needs at least {MIN_PREFIX} characters.")
        terms += 1
        if terms > MAX_TERMS:
            raise _invalid(f"A search query may have at most {MAX_TERMS} words and phrases.")
        (exclude if negated else include).append(Term(tokens, prefix=bool(star)))
    if not include and not exclude and not clauses:
        if seen_or:
            raise _invalid("OR needs words to find on both sides.")
        raise _invalid("Give at least one word to search for.")
    close_clause()
    return Query(tuple(clauses))


# ---- SQLite FTS5 ---------------------------------------------------------------------------


def _fts5_term(term: Term) -> str:
    return '"' + " ".join(term.tokens) + '"' + ("*" if term.prefix else "")


def to_fts5(query: Query) -> str:
    """The FTS5 MATCH expression (NOT binds tighter than AND, AND than OR: all bracketed)."""
    parts = []
    for clause in query.clauses:
        expression = "(" + " AND ".join(_fts5_term(t) for t in clause.include) + ")"
        for term in clause.exclude:
            expression = f"({expression} NOT {_fts5_term(term)})"
        parts.append(expression)
    return " OR ".join(parts)


# ---- PostgreSQL to_tsquery -----------------------------------------------------------------


def _ts_term(term: Term) -> str:
    lexemes = [f"'{token}'" for token in term.tokens]
    if term.prefix:
        lexemes[-1] += ":*"
    return lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"


def to_tsquery(query: Query) -> str:
    """The `to_tsquery` text: `&` within a clause, `!` for exclusions, `|` between clauses."""
    parts = []
    for clause in query.clauses:
        terms = [_ts_term(t) for t in clause.include] + [f"!{_ts_term(t)}" for t in clause.exclude]
        parts.append("(" + " & ".join(terms) + ")")
    return " | ".join(parts)
