"""The sandbox message templates run in: the tags and filters they may use, and what one render may cost.

Anyone who may edit a template (an API key, an operator) decides what the engine does when a campaign renders
it thousands of times in a worker. Django's full set of tags and filters lets a few characters tie a process up
for seconds or exhaust its memory (`{{ name|ljust:"2000000000" }}`, `{% lorem 999999 %}`, loops inside loops over
a long list), so message templates get an allowlist of what messages need, numeric arguments with an upper
bound, and a budget per render: loop items, nodes rendered and characters output. A template that breaks a
rule is refused when it is saved, with its line (sandbox_problems); one that goes over a budget at render
time fails with RenderLimitError, whose text says which limit, so the message fails with that reason.
The limits are checked as the render goes, so a render that would run away stops early.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.template import Library, defaultfilters, defaulttags
from django.template.base import FilterExpression, Node, NodeList, Variable, VariableNode
from django.template.defaulttags import CycleNode, FirstOfNode, ForNode
from django.template.smartif import TokenBase

# The tags a message template may use. `{% if %}` brings elif/else, `{% for %}` brings empty.
ALLOWED_TAGS = ("comment", "cycle", "firstof", "for", "if", "now", "spaceless", "templatetag", "verbatim", "with")
# The filters a message template may use: text case, defaults, numbers, dates, lists, plural forms, truncation.
# Left out, among others: ljust/rjust/center/stringformat (width from the template: output of any size), urlize
# (a history of slow regular expressions), safe/safeseq and {% autoescape %} (contact data must stay escaped in
# HTML email), dictsort, pprint, {% debug %}, {% lorem %}, {% url %}, {% widthratio %}.
ALLOWED_FILTERS = (
    "add",
    "capfirst",
    "cut",
    "date",
    "default",
    "default_if_none",
    "divisibleby",
    "first",
    "floatformat",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "lower",
    "pluralize",
    "slice",
    "time",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "wordcount",
    "yesno",
)

MAX_LOOP_ITEMS = 1_000  # items one {% for %} may go over
MAX_LOOP_ITERATIONS = 10_000  # items all the loops of one render may go over together
MAX_LOOP_NESTING = 2  # a loop inside a loop, no deeper
MAX_TAG_NESTING = 10  # tags inside tags
MAX_RENDER_NODES = 100_000  # tags, values and text pieces rendered by all passes of loop bodies together
MAX_RENDER_CHARACTERS = 1_000_000  # characters one render may output (then the channel's own limit applies)
MAX_TRUNCATE_LENGTH = 1_000  # truncatechars, truncatewords
MAX_DECIMAL_PLACES = 20  # floatformat
MAX_DATE_FORMAT_LENGTH = 100  # date, time
# Lookups that would change the template's data (`{{ items.clear }}` calls list.clear): templates only read.
CHANGING_LOOKUPS = frozenset(
    {"append", "clear", "extend", "insert", "pop", "popitem", "remove", "reverse", "setdefault", "sort", "update"}
)


class RenderLimitError(ValueError):
    """A template asked for more than the sandbox allows; the text says what, fit to show a person."""


# --- Filters with bounded arguments ---------------------------------------------------------------------------


def _truncate_length_check(value: Any, argument: Any) -> None:
    try:
        length = int(argument)
    except (TypeError, ValueError):
        return  # the filter leaves the value as it is
    if abs(length) > MAX_TRUNCATE_LENGTH:
        raise RenderLimitError(f"takes a length of at most {MAX_TRUNCATE_LENGTH:,} here (it was given {length:,}).")


def _decimal_places_check(value: Any, argument: Any) -> None:
    text = str(argument).rstrip("gu")  # floatformat's suffixes: g groups thousands, u ignores the locale
    try:
        places = int(text)
    except ValueError:
        return  # the filter falls back to its default
    if abs(places) > MAX_DECIMAL_PLACES:
        raise RenderLimitError(f"takes at most {MAX_DECIMAL_PLACES} decimal places (it was given {places:,}).")


def _date_format_check(value: Any, argument: Any) -> None:
    if argument is not None and len(str(argument)) > MAX_DATE_FORMAT_LENGTH:
        raise RenderLimitError(f"takes a format of at most {MAX_DATE_FORMAT_LENGTH} characters.")


_NO_VALUE = object()  # the value a filter is applied to, when checking a template before any render


def _join_size_check(value: Any, argument: Any) -> None:
    # The separator repeats between every item: a long one from the context times a long list is a bomb.
    if value is _NO_VALUE or not hasattr(value, "__len__") or isinstance(value, str):
        return
    if len(value) * len(str(argument)) > MAX_RENDER_CHARACTERS:
        raise RenderLimitError(f"would output over {MAX_RENDER_CHARACTERS:,} characters.")


ARGUMENT_CHECKS = {
    "truncatechars": _truncate_length_check,
    "truncatewords": _truncate_length_check,
    "floatformat": _decimal_places_check,
    "date": _date_format_check,
    "time": _date_format_check,
    "join": _join_size_check,
}


def _bounded_filter(name: str, original):
    """`original` with its argument checked first, at every render (the argument may come from the context)."""
    check = ARGUMENT_CHECKS[name]

    @functools.wraps(original)  # keeps is_safe, needs_autoescape and the signature Django checks arguments against
    def bounded(value, *arguments, **options):
        if arguments:
            try:
                check(value, arguments[0])
            except RenderLimitError as error:
                raise RenderLimitError(f"The filter '{name}' {error}") from None
        return original(value, *arguments, **options)

    # mypy does not model attributes set on a function; the sandbox check reads it back with getattr.
    bounded.argument_check = check  # type: ignore[attr-defined]
    return bounded


# --- Loops with a bounded number of items ---------------------------------------------------------------------


class _BoundedSequence(FilterExpression):
    """The sequence of a {% for %}: resolved as usual, then refused when it holds too many items."""

    def __init__(self, expression: FilterExpression):  # a copy of the parsed expression, not a new parse
        # django-stubs leave out FilterExpression's __slots__ (token, filters, var, is_var), which Django declares.
        for name in FilterExpression.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(expression, name))

    def resolve(self, context, ignore_failures=False):
        values = super().resolve(context, ignore_failures=ignore_failures)
        if values is None:
            return values
        if not hasattr(values, "__len__"):
            values = list(itertools.islice(values, MAX_LOOP_ITEMS + 1))
        if len(values) > MAX_LOOP_ITEMS:
            raise RenderLimitError(f"A loop over {len(values):,} items: a loop may go over at most {MAX_LOOP_ITEMS:,}.")
        context.render_budget.loop(len(values))
        return values


# --- The library message templates are compiled with ----------------------------------------------------------

register = Library()
for _name in ALLOWED_TAGS:
    if _name != "for":
        register.tag(_name, defaulttags.register.tags[_name])
for _name in ALLOWED_FILTERS:
    _filter = defaultfilters.register.filters[_name]
    register.filter(_name, _bounded_filter(_name, _filter) if _name in ARGUMENT_CHECKS else _filter)


@register.tag("for")
def bounded_for(parser, token):
    node = defaulttags.do_for(parser, token)
    node.sequence = _BoundedSequence(node.sequence)
    node.nodelist_loop = NodeList([LoopBody(node.nodelist_loop, token)])
    return node


# --- The budget of one render ---------------------------------------------------------------------------------


class RenderBudget:
    """What one render has spent so far: loop items, nodes rendered, characters output.

    Only what can grow without the template growing is counted: the items of loops, each pass of a loop's body
    (its nodes, and what it output), and each value from the context. What is outside loops renders once, so the
    template's own size bounds it; counting that too would cost every render for nothing.
    """

    __slots__ = ("iterations", "nodes", "characters")

    def __init__(self):
        self.iterations = 0
        self.nodes = 0
        self.characters = 0

    def loop(self, items: int) -> None:
        self.iterations += items
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise RenderLimitError(
                f"The loops went over more than {MAX_LOOP_ITERATIONS:,} items in all: that is the most one "
                "message may take."
            )

    def work(self, nodes: int, characters: int) -> None:
        self.nodes += nodes
        self.characters += characters
        if self.nodes > MAX_RENDER_NODES:
            raise RenderLimitError(f"The template did too much work: over {MAX_RENDER_NODES:,} pieces rendered.")
        if self.characters > MAX_RENDER_CHARACTERS:
            raise RenderLimitError(f"The rendered text would be over {MAX_RENDER_CHARACTERS:,} characters.")


class LoopBody(Node):
    """The body of a {% for %}, as the loop's only node: each pass charges the budget its nodes (counted once, at
    compile time) and its output. A loop inside it charges for its own passes."""

    def __init__(self, nodelist: NodeList, token):
        self.nodelist = nodelist
        self.token = token
        self.nodes = _nodes_in(nodelist)

    def render(self, context):
        output = self.nodelist.render(context)
        context.render_budget.work(self.nodes, len(output))
        return output


def _nodes_in(nodelist: Iterable[Node]) -> int:
    count = 0
    for node in nodelist:
        count += 1
        if not isinstance(node, LoopBody):  # a nested loop's body charges for itself
            for name in node.child_nodelists:
                count += _nodes_in(getattr(node, name, None) or ())
    return count


class _CountedValue:
    """Mixed into the nodes that output a value from the context ({{ x }}, {% firstof %}, {% cycle %}): a value
    of any size, as often as the template writes it, so its length counts."""

    def render_annotated(self, context):
        output = super().render_annotated(context)
        budget = context.render_budget
        budget.characters += len(output)  # (RenderBudget.work, inlined: this runs for every value rendered)
        if budget.characters > MAX_RENDER_CHARACTERS:
            budget.work(0, 0)  # raises, with the reason
        return output


VALUE_NODES = (VariableNode, FirstOfNode, CycleNode)
_COUNTED: dict[type[Node], type[Node]] = {
    cls: type(f"Counted{cls.__name__}", (_CountedValue, cls), {}) for cls in VALUE_NODES
}


def count_rendering(nodelist: Iterable[Node]) -> None:
    """Make the value nodes of a compiled template count against the render budget (once, at compile time)."""
    for node in nodelist:
        counted = _COUNTED.get(type(node))
        if counted is not None:
            node.__class__ = counted
        for name in node.child_nodelists:
            count_rendering(getattr(node, name, None) or ())


# --- Checking a template before it is saved -------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxProblem:
    line: int
    message: str


def sandbox_problems(nodelist) -> list[SandboxProblem]:
    """What a compiled template asks for beyond the sandbox's limits, with the line of each: loops nested too
    deep, numeric arguments over their bound, lookups that would change data. Unknown tags and filters are
    already syntax errors (the library above has only the allowed ones)."""
    problems: list[SandboxProblem] = []
    _check_nodes(nodelist, loop_depth=0, tag_depth=0, problems=problems)
    return problems


def _check_nodes(nodelist, *, loop_depth: int, tag_depth: int, problems: list[SandboxProblem]) -> None:
    for node in nodelist:
        line = getattr(getattr(node, "token", None), "lineno", None) or 1
        loops = loop_depth + isinstance(node, ForNode)
        if loops > MAX_LOOP_NESTING:
            problems.append(SandboxProblem(line, f"loops may nest at most {MAX_LOOP_NESTING} deep."))
        children = set(node.child_nodelists)
        for attribute, value in vars(node).items():
            if attribute not in children and attribute not in ("token", "origin"):
                _check_expression(value, line, problems)
        nested = [child for child in (getattr(node, name, None) for name in node.child_nodelists) if child]
        depth = tag_depth + (not isinstance(node, LoopBody))  # a loop's body is part of its {% for %}
        if nested and depth > MAX_TAG_NESTING:
            problems.append(SandboxProblem(line, f"tags may nest at most {MAX_TAG_NESTING} deep."))
            return  # and no deeper: one problem says it
        for child in nested:
            _check_nodes(child, loop_depth=loops, tag_depth=depth, problems=problems)


def _check_expression(value: Any, line: int, problems: list[SandboxProblem]) -> None:
    if isinstance(value, FilterExpression):
        _check_expression(value.var, line, problems)
        for function, arguments in value.filters:
            check = getattr(function, "argument_check", None)
            for is_variable, argument in arguments:
                if is_variable and argument.literal is None:
                    _check_expression(argument, line, problems)  # from the context: checked at each render
                elif check is not None:
                    try:
                        check(_NO_VALUE, argument.literal if is_variable else argument)  # a number is a Variable
                    except RenderLimitError as error:
                        problems.append(SandboxProblem(line, f"the filter '{function._filter_name}' {error}"))
    elif isinstance(value, Variable):
        for part in value.lookups or ():
            if part in CHANGING_LOOKUPS:
                problems.append(
                    SandboxProblem(line, f"'{value.var}' would change the data ('{part}'): templates only read it.")
                )
    elif isinstance(value, TokenBase):  # an {% if %} condition
        for part in ("value", "first", "second"):
            _check_expression(getattr(value, part, None), line, problems)
    elif isinstance(value, list | tuple):
        for item in value:  # nodes in here (an {% if %}'s branches) are checked as children, and skipped here
            _check_expression(item, line, problems)
    elif isinstance(value, dict):
        for item in value.values():
            _check_expression(item, line, problems)
