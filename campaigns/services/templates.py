"""Rendering message templates with Django's template engine from a plain dict context."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError

from ..models import MessageTemplate

# Missing variables render as this marker, so a message never goes out as "Hello ,".
_MISSING = "\x00missing:%s\x00"
_MISSING_RE = re.compile("\x00missing:(.*?)\x00")

# Plain text (SMS, the email's text part) must not be HTML-escaped; the HTML part must be.
_text_engine = Engine(autoescape=False, string_if_invalid=_MISSING)
_html_engine = Engine(autoescape=True, string_if_invalid=_MISSING)


class TemplateRenderError(ValueError):
    """A template could not be rendered: bad syntax, or a variable the context does not have."""

    def __init__(self, reason: str, *, field: str = "body"):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class RenderedContent:
    subject: str = ""
    body: str = ""
    html_body: str = ""


def render_string(source: str, context: dict[str, Any], *, html: bool = False, field: str = "body") -> str:
    if not source:
        return ""
    engine = _html_engine if html else _text_engine
    try:
        rendered = engine.from_string(source).render(Context(context, autoescape=html))
    except TemplateSyntaxError as error:
        raise TemplateRenderError(f"Template syntax error in {field}: {error}", field=field) from error
    missing = sorted(set(_MISSING_RE.findall(rendered)))
    if missing:
        names = ", ".join(repr(name) or "''" for name in missing)
        raise TemplateRenderError(f"Missing variable(s) in {field}: {names}", field=field)
    return rendered


def template_render(*, template: MessageTemplate, context: dict[str, Any]) -> RenderedContent:
    """Render a template's subject, body and HTML body with `context`. Raises TemplateRenderError."""
    return RenderedContent(
        subject=render_string(template.subject, context, field="subject").strip(),
        body=render_string(template.body, context, field="body"),
        html_body=render_string(template.html_body, context, html=True, field="html_body"),
    )
