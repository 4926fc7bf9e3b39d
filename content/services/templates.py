"""Message templates: refusing bad ones on save, picking the version for a language, rendering strictly.

Rendering never produces "Hello ,": a variable with no value and no declared default fails the render with
TemplateRenderError, whose `reason` names the variable, so the caller can refuse or fail the message with it.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template import TemplateSyntaxError

from ..html_text import html_to_text
from ..locales import language_candidates, normalize_language
from ..models import Channel, MessageTemplate, MessageTemplateTranslation
from ..template_syntax import MISSING_RE, compile_template, render, syntax_problem, variables_used
from .sms_segments import SmsSegments, body_length_problem, sms_segments

CONTENT_FIELDS = ("subject", "body", "html_body")
# The most one rendered message may hold: a text channel's body its BODY_CHARACTER_LIMITS (sms_segments); an email
# part over 1 MB is more than any inbox shows, and a subject is a column of 255 characters. A render over its
# limit fails, naming the limit.
RENDERED_EMAIL_PART_BYTES = 1_000_000
RENDERED_SUBJECT_LIMIT = 255
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The variables every contact fills by name (campaigns.selectors.contact_context): a template may use them without
# declaring them, and declares one only to give it a default for contacts who leave that field blank. Custom
# attributes differ from contact to contact, so those are declared like any other variable.
CONTACT_VARIABLES = ("name", "first_name", "phone", "email", "language", "time_zone")


class TemplateRenderError(ValueError):
    """A template could not be rendered: bad syntax, or a variable the context does not have.

    `reason` is fit to show a person (and to store as the reason a message failed); `missing` names the
    variables that had no value.
    """

    def __init__(self, reason: str, *, field: str = "body", missing: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.missing = missing


@dataclass(frozen=True)
class RenderedContent:
    subject: str = ""
    body: str = ""
    html_body: str = ""
    language: str = ""  # the version rendered: the template's language or a translation's


@dataclass(frozen=True)
class TemplateVersion:
    """The content of one language version of a template."""

    language: str
    subject: str = ""
    body: str = ""
    html_body: str = ""


# --- Validation ---------------------------------------------------------------------------------------------


def template_variables_clean(value: Any) -> dict[str, Any]:
    """Declared variables as {name: default}; a default of None means the variable is required."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError('Declare variables as a JSON object of name to default: {"first_name": null}.')
    problems = []
    for name in value:
        if not _VARIABLE_NAME.match(name) or keyword.iskeyword(name) or name in ("True", "False", "None"):
            problems.append(
                f"'{name}' is not a usable variable name (letters, digits and _, not starting with a digit)."
            )
    if problems:
        raise ValidationError(problems)
    return dict(value)


def template_content_validate(
    *,
    channel: str,
    subject: str = "",
    body: str = "",
    html_body: str = "",
    variables: dict[str, Any],
    undeclared: Iterable[str] = (),
) -> None:
    """Refuse content a message could not be made from, per field, with the line and the name at fault.

    Checks what the channel needs (an SMS has a body and no subject, an email a subject and a body or HTML),
    that each field compiles, and that it uses only declared variables or those named in `undeclared` (a
    message template's CONTACT_VARIABLES). Raises ValidationError({field: [...]}).
    """
    known = {*variables, *undeclared}
    hint = f" ({', '.join(undeclared)} need no declaring)" if undeclared else ""
    values = {"subject": subject or "", "body": body or "", "html_body": html_body or ""}
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if channel == Channel.EMAIL:
        if not values["subject"].strip():
            refuse("subject", "An email template needs a subject.")
        if not values["body"].strip() and not values["html_body"].strip():
            refuse("body", "An email template needs a text body or an HTML body (the text is then derived from it).")
    else:
        label = Channel(channel).label if channel in Channel.values else channel
        if not values["body"].strip():
            refuse("body", f"{label} templates need a body.")
        for name in ("subject", "html_body"):
            if values[name].strip():
                refuse(
                    name, f"{label} messages have no {'subject' if name == 'subject' else 'HTML part'}: leave it empty."
                )

    for name, source in values.items():
        if not source:
            continue
        problem = syntax_problem(source)
        if problem:
            refuse(name, f"Line {problem.line}: {problem.message}")
            continue
        for use in variables_used(source):
            if use.name not in known:
                refuse(
                    name,
                    f"Line {use.line}: '{use.name}' is not a declared variable. "
                    f"Declare it in the template's variables, or correct the name{hint}.",
                )
    if errors:
        raise ValidationError(errors)


def template_validate(template: MessageTemplate) -> None:
    """Check an unsaved template: variables, language and content. Normalises variables and language in place;
    raises ValidationError({field: [...]}). The admin form and the services below both call this."""
    errors: dict[str, list[str]] = {}
    try:
        template.variables = template_variables_clean(template.variables)
    except ValidationError as error:
        errors["variables"] = error.messages
    try:
        template.language = normalize_language(template.language)
    except ValidationError as error:
        errors["language"] = error.messages
    if "variables" not in errors:
        try:
            template_content_validate(
                channel=template.channel,
                subject=template.subject,
                body=template.body,
                html_body=template.html_body,
                variables=template.variables,
                undeclared=CONTACT_VARIABLES,
            )
        except ValidationError as error:
            errors.update(error.message_dict)
    if not isinstance(template.sample_context, dict):
        errors["sample_context"] = ['Give sample values as a JSON object: {"first_name": "Ada"}.']
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def template_create(
    *,
    name: str,
    slug: str,
    channel: str,
    subject: str = "",
    body: str = "",
    html_body: str = "",
    variables: dict[str, Any] | None = None,
    sample_context: dict[str, Any] | None = None,
    language: str = "en",
) -> MessageTemplate:
    """Create a template after checking its content (see template_content_validate). Raises ValidationError."""
    template = MessageTemplate(
        name=name,
        slug=slug,
        channel=channel,
        subject=subject,
        body=body,
        html_body=html_body,
        variables=variables or {},
        sample_context=sample_context or {},
        language=language,
    )
    template_validate(template)
    template.full_clean()
    template.save()
    return template


@transaction.atomic
def template_update(*, template: MessageTemplate, **fields: Any) -> MessageTemplate:
    """Change a template's fields after checking the result, translations included. Raises ValidationError."""
    for name, value in fields.items():
        setattr(template, name, value)
    template_validate(template)
    template.full_clean()
    for translation in template.translations.all():
        try:
            template_content_validate(
                channel=template.channel,
                subject=translation.subject,
                body=translation.body,
                html_body=translation.html_body,
                variables=template.variables,
                undeclared=CONTACT_VARIABLES,
            )
        except ValidationError as error:
            raise ValidationError(
                {"variables": [f"The {translation.language} translation: {m}" for m in error.messages]}
            ) from error
    template.save()
    return template


def template_translation_validate(
    *, template: MessageTemplate, language: str, subject: str = "", body: str = "", html_body: str = ""
) -> str:
    """Check one translation of `template` (its channel and declared variables apply). Returns the language code
    normalised; raises ValidationError({field: [...]})."""
    try:
        language = normalize_language(language)
    except ValidationError as error:
        raise ValidationError({"language": error.messages}) from error
    if language == template.language:
        raise ValidationError({"language": [f"'{language}' is the template's own language: edit the template."]})
    template_content_validate(
        channel=template.channel,
        subject=subject,
        body=body,
        html_body=html_body,
        variables=template.variables,
        undeclared=CONTACT_VARIABLES,
    )
    return language


@transaction.atomic
def template_translation_set(
    *, template: MessageTemplate, language: str, subject: str = "", body: str = "", html_body: str = ""
) -> MessageTemplateTranslation:
    """Create or replace the template's version in `language`. Raises ValidationError."""
    language = template_translation_validate(
        template=template, language=language, subject=subject, body=body, html_body=html_body
    )
    translation, _created = MessageTemplateTranslation.objects.update_or_create(
        template=template, language=language, defaults={"subject": subject, "body": body, "html_body": html_body}
    )
    return translation


# --- Rendering ----------------------------------------------------------------------------------------------


def template_version(*, template: MessageTemplate, language: str = "") -> TemplateVersion:
    """The version for a reader of `language`: that exact translation, else one in its base language
    (`pt` for `pt-br`), else the template's own content."""
    if language:
        translations = {t.language: t for t in template.translations.all()}  # uses a prefetch when there is one
        for code in language_candidates(language):
            if code == template.language:
                break
            if code in translations:
                found = translations[code]
                return TemplateVersion(
                    language=found.language, subject=found.subject, body=found.body, html_body=found.html_body
                )
    return TemplateVersion(
        language=template.language, subject=template.subject, body=template.body, html_body=template.html_body
    )


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def template_context(*, variables: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The context a template renders with: the given values, with declared defaults for those not given.

    A value that is None or blank text counts as not given: a contact without a name gets the default of
    `name`, or the message fails, rather than reading "Hello ,".
    """
    merged = {name: default for name, default in (variables or {}).items() if default is not None}
    merged.update({name: value for name, value in context.items() if not _is_blank(value)})
    return merged


def render_string(source: str, context: dict[str, Any], *, html: bool = False, field: str = "body") -> str:
    """Render one field strictly. Raises TemplateRenderError naming the variables that have no value, or the
    limit of the template sandbox that the render went over."""
    if not source:
        return ""
    try:
        compile_template(source, html=html)
        missing_uses = [use for use in variables_used(source) if use.name not in context]
    except (TemplateSyntaxError, RecursionError) as error:
        raise TemplateRenderError(f"Template syntax error in {field}: {error}", field=field) from error
    if missing_uses:
        names = tuple(use.name for use in missing_uses)
        listed = ", ".join(f"'{use.name}' (line {use.line})" for use in missing_uses)
        raise TemplateRenderError(
            f"Missing variable(s) in {field}: {listed}. No value was given and the template declares no default.",
            field=field,
            missing=names,
        )
    try:
        rendered = render(source, context, html=html)
    except Exception as error:  # a filter or tag failing on a value: fail this message, not the whole batch
        raise TemplateRenderError(f"Could not render {field}: {error}", field=field) from error
    # A dotted lookup that finds nothing (`{{ order.total }}` without `total`) renders as the marker.
    missing = tuple(sorted(set(MISSING_RE.findall(rendered))))
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise TemplateRenderError(f"Missing variable(s) in {field}: {listed}.", field=field, missing=missing)
    return rendered


def template_render(*, template: MessageTemplate, context: dict[str, Any], language: str = "") -> RenderedContent:
    """Render a template's subject, body and HTML body for a reader of `language` with `context`.

    Declared defaults fill what the context lacks. An email without a text body gets one derived from its
    rendered HTML. Raises TemplateRenderError.
    """
    version = template_version(template=template, language=language)
    return version_render(version=version, variables=template.variables, context=context, channel=template.channel)


def version_render(
    *, version: TemplateVersion, variables: dict[str, Any], context: dict[str, Any], channel: str = ""
) -> RenderedContent:
    """Render one version with the declared defaults under `context`, for `channel` (its size limit applies:
    sms_segments.BODY_CHARACTER_LIMITS; the email limits when no channel is given). Raises TemplateRenderError."""
    values = template_context(variables=variables, context=context)
    html_body = render_string(version.html_body, values, html=True, field="html_body")
    body = render_string(version.body, values, field="body")
    if not body.strip() and html_body:
        body = html_to_text(html_body)
    content = RenderedContent(
        subject=render_string(version.subject, values, field="subject").strip(),
        body=body,
        html_body=html_body,
        language=version.language,
    )
    rendered_size_check(content, channel=channel)
    return content


def rendered_size_check(content: RenderedContent, *, channel: str) -> None:
    """Raise TemplateRenderError when rendered content is over what its channel carries."""
    too_long = body_length_problem(channel=channel, body=content.body)
    if too_long:
        raise TemplateRenderError(too_long, field="body")
    if len(content.subject) > RENDERED_SUBJECT_LIMIT:
        raise TemplateRenderError(
            f"The rendered subject is {len(content.subject):,} characters: at most {RENDERED_SUBJECT_LIMIT}.",
            field="subject",
        )
    for name in ("body", "html_body"):
        text = getattr(content, name)
        # A character is at most 4 bytes of UTF-8: most texts are measured without encoding them.
        if len(text) * 4 > RENDERED_EMAIL_PART_BYTES and len(text.encode()) > RENDERED_EMAIL_PART_BYTES:
            raise TemplateRenderError(
                f"The rendered {name} is {len(text.encode()):,} bytes: an email part may be at most "
                f"{RENDERED_EMAIL_PART_BYTES:,}.",
                field=name,
            )


# --- Preview ------------------------------------------------------------------------------------------------


@dataclass
class TemplatePreview:
    """What the admin shows while a template is edited: the content with sample data, or why there is none."""

    content: RenderedContent | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    sms: SmsSegments | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": not self.errors, "errors": self.errors}
        if self.content is not None:
            data.update(subject=self.content.subject, body=self.content.body, html_body=self.content.html_body)
        if self.sms is not None:
            data["sms"] = {
                "encoding": self.sms.encoding,
                "characters": self.sms.characters,
                "units": self.sms.units,
                "segments": self.sms.segments,
                "units_per_segment": self.sms.units_per_segment,
                "warnings": self.sms.warnings,
            }
        return data


def template_preview(
    *,
    channel: str,
    subject: str = "",
    body: str = "",
    html_body: str = "",
    variables: Any = None,
    sample_context: Any = None,
    language: str = "",
) -> TemplatePreview:
    """Check content as the save would, then render it with the sample values (and the declared defaults).

    For SMS, also the encoding, the character count and the segment count of the rendered text.
    """
    preview = TemplatePreview()
    if channel not in Channel.values:
        preview.errors["channel"] = ["Choose a channel."]
        return preview
    try:
        declared = template_variables_clean(variables)
    except ValidationError as error:
        preview.errors["variables"] = error.messages
        return preview
    if sample_context not in (None, "") and not isinstance(sample_context, dict):
        preview.errors["sample_context"] = ['Give sample values as a JSON object: {"first_name": "Ada"}.']
        return preview
    try:
        template_content_validate(
            channel=channel,
            subject=subject,
            body=body,
            html_body=html_body,
            variables=declared,
            undeclared=CONTACT_VARIABLES,
        )
    except ValidationError as error:
        preview.errors = error.message_dict
        return preview
    version = TemplateVersion(language=language, subject=subject, body=body, html_body=html_body)
    try:
        preview.content = version_render(
            version=version, variables=declared, context=sample_context or {}, channel=channel
        )
    except TemplateRenderError as error:
        hint = " Give it a sample value (or a default) to preview the template." if error.missing else ""
        preview.errors[error.field] = [f"{error.reason}{hint}"]
        return preview
    if channel == Channel.SMS:
        preview.sms = sms_segments(preview.content.body)
    return preview
