"""OpenProject's Formattable: `{"format", "raw", "html"}`, with HTML that is always sanitized."""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

from casefolio.api.v3.hal import Json

# CommonMark plus GFM tables and strikethrough, as OpenProject's editor writes. Raw HTML is
# let through markdown-it on purpose and then cleaned by nh3, so harmless inline HTML that
# OpenProject users write (<br>, <sub>) survives while scripts and handlers never do.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "s",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "code": {"class"},
}


def sanitize(markup: str) -> str:
    """Given HTML, return it with only allow-listed tags, attributes and URL schemes left."""
    return nh3.clean(
        markup,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def markdown(raw: str | None) -> Json:
    """Given markdown source, return the Formattable with sanitized HTML."""
    raw = raw or ""
    rendered = sanitize(_MARKDOWN.render(raw)).strip() if raw.strip() else ""
    return {"format": "markdown", "raw": raw, "html": rendered}


def plain(raw: str | None) -> Json:
    """Given plain text (attachment descriptions), return the Formattable: escaped paragraphs,
    single line breaks as <br>."""
    raw = raw or ""
    paragraphs = [p for p in raw.replace("\r\n", "\n").split("\n\n") if p.strip()]
    rendered = "".join(
        "<p>" + html.escape(p.strip("\n")).replace("\n", "<br>") + "</p>" for p in paragraphs
    )
    return {"format": "plain", "raw": raw, "html": rendered}


def raw_text(value: object) -> str | None:
    """Given a Formattable as a client sends it (`{"raw": …}`) or a bare string, return the
    raw text; None when the value has neither shape. `format` and `html` are read-only and
    ignored, as OpenProject does."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        raw = value.get("raw", "")
        if raw is None:
            return ""
        if isinstance(raw, str):
            return raw
    return None
