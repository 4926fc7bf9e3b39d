"""The plain-text part of an email, derived from its HTML part when the template gives none."""

from __future__ import annotations

import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

# "strict" lays out blocks and lists without padding inline elements; links become "[text](url)" so a reader of
# the text part can still follow them.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def html_to_text(html: str) -> str:
    """Readable text for the HTML: paragraphs and headings on their own lines, lists with bullets, links kept."""
    if not html.strip():
        return ""
    text = get_text(html, _CONFIG)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
