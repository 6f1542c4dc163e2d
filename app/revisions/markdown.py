"""Markdown → sanitised HTML. Raw HTML in the source is escaped; the output passes through nh3
(Ammonia), which drops scripts, event handlers and non-http(s)/mailto links."""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_ALLOWED_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=512)
def render_markdown(source: str) -> str:
    return nh3.clean(_md.render(source), url_schemes=_ALLOWED_SCHEMES, link_rel="noopener noreferrer nofollow")
