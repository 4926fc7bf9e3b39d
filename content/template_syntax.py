"""The template language of message templates: Django's, over a plain dict, without files or `{% load %}`.

This module compiles template sources (cached, since a campaign renders the same source thousands of times),
renders them (text as plain text, HTML escaped), and finds the variables a source reads from its context, with
the line each first appears on, so that a template can be refused when it uses a variable it does not declare.
The tags, filters and limits a template may use are template_sandbox's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from django.template import Context, Engine, Template, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import FilterExpression, Lexer, Node, NodeList, TextNode, TokenType, Variable, VariableNode
from django.template.defaulttags import FilterNode, ForNode, IfNode, RegroupNode, WithNode
from django.template.smartif import TokenBase
from django.utils.html import escape
from django.utils.safestring import SafeString

from .template_sandbox import ALLOWED_FILTERS, ALLOWED_TAGS, RenderBudget, count_rendering, sandbox_problems

# Missing variables render as this marker, so a message never goes out as "Hello ,".
MISSING_MARKER = "\x00missing:%s\x00"
MISSING_RE = re.compile("\x00missing:(.*?)\x00")

# Tags of file-based templates, which MessageEngine leaves out.
_FILE_TAGS = ("include", "extends", "block", "load")

# Names the template context always has.
CONTEXT_BUILTINS = frozenset({"True", "False", "None"})

# Attributes through which tags bind a name for the rest of the template (`{% cycle ... as x %}`, `{% now ... as x %}`,
# `{% firstof ... as x %}`, `{% widthratio ... as x %}`, `{% regroup ... as x %}`).
_BINDING_ATTRIBUTES = ("asvar", "variable_name", "var_name")

# How Django's parser words an unknown filter or tag: a built-in one the sandbox leaves out, or a typo.
_UNKNOWN_FILTER = re.compile(r"^Invalid filter: '(?P<name>[^']*)'")
_UNKNOWN_TAG = re.compile(r"^Invalid block tag on line \d+: '(?P<name>[^']*)'")


class SandboxedTemplate(Template):
    """A compiled message template: each render has a budget (template_sandbox.RenderBudget) that every node
    counts against, so a render that would run away stops with RenderLimitError."""

    def __init__(self, template_string, origin=None, name=None, engine=None):
        super().__init__(template_string, origin, name, engine)
        count_rendering(self.nodelist)

    def _render(self, context):
        context.render_budget = RenderBudget()
        return super()._render(context)


class MessageEngine(Engine):
    """Django's engine with only template_sandbox's tags and filters: no loader tags (a message template cannot
    `{% include %}` or `{% extends %}` files), none that can make a render run away. What is left out is a
    syntax error when the template is saved rather than a failure when it is sent."""

    default_builtins = ["content.template_sandbox"]

    def from_string(self, template_code):
        return SandboxedTemplate(template_code, engine=self)


# Plain text (SMS, the email's subject and text part) must not be HTML-escaped; the HTML part must be.
text_engine = MessageEngine(autoescape=False, string_if_invalid=MISSING_MARKER)
html_engine = MessageEngine(autoescape=True, string_if_invalid=MISSING_MARKER)
# debug=True makes syntax errors carry the line they are on.
_checking_engine = MessageEngine(debug=True)


@lru_cache(maxsize=512)
def compile_template(source: str, *, html: bool = False) -> Template:
    """The compiled template (raises TemplateSyntaxError). Compiled templates are safe to render concurrently."""
    return (html_engine if html else text_engine).from_string(source)


@lru_cache(maxsize=512)
def plain_parts(source: str) -> tuple[tuple[bool, str], ...] | None:
    """The source as (is a name, text) parts when it is only text and plain names (`Hi {{ name }}!`): no tags,
    filters, dotted names or literals. None for anything else. See render_plain."""
    parts = []
    for node in compile_template(source).nodelist:
        if isinstance(node, TextNode):
            parts.append((False, node.s))
            continue
        if not isinstance(node, VariableNode):
            return None
        expression = node.filter_expression
        # django-stubs leave out FilterExpression.is_var, which Django sets in __init__.
        if expression.filters or not expression.is_var:  # type: ignore[attr-defined]
            return None
        variable = expression.var
        if not variable.lookups or len(variable.lookups) != 1 or variable.translate or variable.message_context:
            return None
        parts.append((True, variable.lookups[0]))
    return tuple(parts)


def render_plain(source: str, context: dict, *, html: bool = False) -> str | None:
    """What Django's engine renders `source` with `context` as, when the source is text and plain names
    (plain_parts) and each name's value is a str (the engine outputs such a value as it is, HTML-escaped in
    HTML); None otherwise, for the engine to render. The engine's set-up for each render (a Context, its
    render state, a node per part) was a fifth of a fanned-out message's cost, for templates that are mostly
    this simple. The result is typed as render() types it."""
    parts = plain_parts(source)
    if parts is None:
        return None
    out = []
    for is_name, text in parts:
        if is_name:
            value = context.get(text)
            if type(value) is not str:  # noqa: E721 - a str subclass (safe text) is the engine's to render
                return None
            text = escape(value) if html else value
        out.append(text)
    return SafeString("".join(out)) if html else "".join(out)


def render(source: str, context: dict, *, html: bool = False) -> str:
    """`source` rendered with `context`: the fast path when it applies (render_plain), else the engine.

    Text renders (SMS, WhatsApp, Messenger, an email's subject and text part) come back as a plain str: they
    are not HTML, and whoever shows one in a page must escape it. Only the HTML part is SafeString, since it
    is HTML by design (values in it are escaped as it renders). Raises TemplateSyntaxError, RenderLimitError,
    or whatever a filter raises on a value.
    """
    rendered = render_plain(source, context, html=html)
    if rendered is not None:
        return rendered
    rendered = compile_template(source, html=html).render(Context(context, autoescape=html))
    # The engine marks whatever it outputs as safe HTML; text is not, so it goes back to a plain str.
    return rendered if html else str.__str__(rendered)


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    message: str


def syntax_problem(source: str) -> TemplateProblem | None:
    """The first problem with `source`, with its line: a syntax error (an unknown or disallowed tag or filter
    counts as one), or something it asks for beyond the sandbox's limits. None if it may be saved."""
    try:
        nodelist = _checking_engine.from_string(source).nodelist
    except TemplateSyntaxError as error:
        debug = getattr(error, "template_debug", None) or {}
        tag = (debug.get("during") or "").removeprefix("{%").strip().split(" ")[0]
        message = f"syntax error: {error}"
        if tag in _FILE_TAGS:
            message = f"syntax error: {{% {tag} %}} is not available in message templates: they are not files."
        elif (found := _UNKNOWN_TAG.match(str(error))) and found["name"] in defaulttags.register.tags:
            message = (
                f"the tag {{% {found['name']} %}} is not allowed here. Allowed: {', '.join(sorted(ALLOWED_TAGS))}."
            )
        elif (found := _UNKNOWN_FILTER.match(str(error))) and found["name"] in defaultfilters.register.filters:
            message = f"the filter '{found['name']}' is not allowed here. Allowed: {', '.join(ALLOWED_FILTERS)}."
        return TemplateProblem(line=debug.get("line", 1), message=message)
    except RecursionError:
        return TemplateProblem(line=1, message="tags are nested too deeply.")
    problems = sandbox_problems(nodelist)
    if problems:
        return TemplateProblem(line=problems[0].line, message=problems[0].message)
    return None


@dataclass(frozen=True)
class VariableUse:
    name: str
    line: int


@lru_cache(maxsize=512)
def variables_used(source: str) -> tuple[VariableUse, ...]:
    """Every context variable `source` reads, once each, with the line of its first use, in order of appearance.

    Only the first part of a dotted name counts (`order` in `{{ order.total }}`). Names the template binds
    itself (`{% for item in items %}`, `{% with total=order.total %}`, `forloop`, `... as name`) are not
    context variables. Raises TemplateSyntaxError for a source that does not compile.
    """
    nodelist = _checking_engine.from_string(source).nodelist
    found: dict[str, int] = {}
    for name, node_line in _free_names(nodelist, frozenset(CONTEXT_BUILTINS)):
        if name not in found:
            found[name] = node_line
    # The Lexer numbers every token it makes (Token.lineno is None only for tokens built by hand).
    tokens = [
        (cast(int, token.lineno), _without_string_literals(token.contents))
        for token in Lexer(source).tokenize()
        if token.token_type in (TokenType.VAR, TokenType.BLOCK)
    ]
    uses = [VariableUse(name=name, line=_line_of(name, tokens, node_line)) for name, node_line in found.items()]
    return tuple(sorted(uses, key=lambda use: use.line))


def _free_names(nodelist: NodeList, bound: frozenset[str]):
    """Yield (name, line) for each unbound variable read in `nodelist`."""
    for node in nodelist:
        line = getattr(getattr(node, "token", None), "lineno", None) or 1
        if isinstance(node, ForNode):
            yield from _expression_names(node.sequence, bound, line)
            # django-stubs type a ForNode's bodies as `list[str] | NodeList`; the parser always makes NodeLists.
            yield from _free_names(cast(NodeList, node.nodelist_loop), bound | set(node.loopvars) | {"forloop"})
            yield from _free_names(cast(NodeList, node.nodelist_empty), bound)
        elif isinstance(node, WithNode):
            for expression in node.extra_context.values():
                yield from _expression_names(expression, bound, line)
            yield from _free_names(node.nodelist, bound | set(node.extra_context))
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                yield from _expression_names(condition, bound, line)
                yield from _free_names(branch, bound)
        elif isinstance(node, RegroupNode):
            # The `by` expression is looked up on each item of the target, not in the context.
            yield from _expression_names(node.target, bound, line)
        elif isinstance(node, FilterNode):
            # `{% filter upper %}` compiles to the expression `var|upper`, `var` being the block's own output.
            yield from _expression_names(node.filter_expr.filters, bound, line)
            yield from _free_names(node.nodelist, bound)
        elif isinstance(node, VariableNode):
            yield from _expression_names(node.filter_expression, bound, line)
        else:
            children = set(node.child_nodelists)
            for attribute, value in vars(node).items():
                if attribute not in children and attribute not in ("token", "origin"):
                    yield from _expression_names(value, bound, line)
            for attribute in node.child_nodelists:
                yield from _free_names(getattr(node, attribute, None) or NodeList(), bound)
        for attribute in _BINDING_ATTRIBUTES:
            name = getattr(node, attribute, None)
            if isinstance(name, str) and name:
                bound = bound | {name}


def _expression_names(value, bound: frozenset[str], line: int):
    """Yield (name, line) for variables read by a tag argument: filter expressions, conditions, lists of them."""
    if isinstance(value, FilterExpression):
        yield from _expression_names(value.var, bound, line)
        for _filter, arguments in value.filters:
            for is_variable, argument in arguments:
                if is_variable:
                    yield from _expression_names(argument, bound, line)
    elif isinstance(value, Variable):
        if value.lookups and value.lookups[0] not in bound:
            yield value.lookups[0], line
    elif isinstance(value, TokenBase):  # an `{% if %}` condition: literals and operators
        for part in ("value", "first", "second"):
            yield from _expression_names(getattr(value, part, None), bound, line)
    elif isinstance(value, list | tuple) and len(value) == 2 and callable(value[0]):
        # one (filter function, [(is_variable, argument), ...]) pair of a FilterExpression
        for is_variable, argument in value[1]:
            if is_variable:
                yield from _expression_names(argument, bound, line)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _expression_names(item, bound, line)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _expression_names(item, bound, line)
    elif isinstance(value, Node):
        return  # e.g. {% resetcycle %} pointing at its {% cycle %}: that node is visited on its own


_STRING_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def _without_string_literals(contents: str) -> str:
    return _STRING_LITERAL.sub('""', contents)


def _line_of(name: str, tokens: list[tuple[int, str]], at_least: int) -> int:
    """The line of the first tag or variable at or after `at_least` that mentions `name` (an `{% elif %}` sits
    on a later line than its `{% if %}` node)."""
    pattern = re.compile(rf"(?<![\w.|]){re.escape(name)}(?!\w)")
    for line, contents in tokens:
        if line >= at_least and pattern.search(contents):
            return line
    return at_least
