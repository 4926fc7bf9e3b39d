"""Velocity limits: how many messages may go to one recipient, to one number range, or from one API key in an hour
(docs/guard.md, "Velocity limits and one-time codes").

SMS pumping sends one-time codes to many numbers of a range its operator is paid for, so the limits count what
pumping cannot avoid: distinct numbers in one prefix, codes to one number, codes from one key. Counted in Redis
(every web and bulk process shares one count) by one Lua script per call, however many messages and limits: an
API request asks once, a batch or bulk chunk once for all its messages, each seeing the ones before it. A message
over a limit is not counted (what is held does not use up the next hour's room). With every limit off for a message
(the default for all but one-time codes) nothing is asked of Redis at all.

The window is an hour that slides: this clock hour's count plus the previous one's, weighted by how much of it is
still within the last 3,600 seconds (two counters per limit, never a list of every message).

This module takes plain values (channel, recipient, purpose, key id) and knows nothing of messages.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import RedisError

from messaging_project.redis_connections import RedisConfig, shared_client

logger = logging.getLogger(__name__)

OTP = "otp"  # the purpose of one-time codes: the strictest limits apply
WINDOW_SECONDS = 3600
KEY_PREFIX = "tidings:velocity"
# Channels whose messages cost money per message and can be pumped; email only counts per recipient (one inbox
# flooded), never per prefix or key: it has no number ranges and costs next to nothing.
PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
RECIPIENT_CHANNELS = PHONE_CHANNELS | {"email"}

RECIPIENT, PREFIX, KEY, UNCHECKED = "recipient", "prefix", "key", "unchecked"

LIMITS = (
    "RECIPIENT_HOURLY_LIMIT",
    "OTP_RECIPIENT_HOURLY_LIMIT",
    "VELOCITY_PREFIX_DIGITS",
    "PREFIX_DISTINCT_PER_HOUR",
    "OTP_PREFIX_DISTINCT_PER_HOUR",
    "KEY_HOURLY_LIMIT",
    "OTP_KEY_HOURLY_LIMIT",
)

# KEYS: two per limit, this window's then the previous one's. ARGV: the previous window's weight, the seconds a
# window's keys live, then per message its number of limits and per limit: kind (c: a counter of messages, s: a set
# of distinct numbers), limit, member (the number, for a set). Answers two numbers per message: 0 and 0 when it
# passes (and is counted), else the position of the first limit it passes (1-based) and the count it would make.
_SCRIPT = """
local weight, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local a, k = 3, 1
local answers = {}
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  a = a + 1
  local over, count = 0, 0
  local known = {}
  for i = 0, n - 1 do
    local kind, limit, member = ARGV[a + 3 * i], tonumber(ARGV[a + 3 * i + 1]), ARGV[a + 3 * i + 2]
    local current, previous = KEYS[k + 2 * i], KEYS[k + 2 * i + 1]
    local seen
    if kind == 's' then
      known[i] = redis.call('SISMEMBER', current, member) == 1 or redis.call('SISMEMBER', previous, member) == 1
      if not known[i] then
        seen = redis.call('SCARD', current) + math.floor(redis.call('SCARD', previous) * weight)
      end
    else
      local now, before = redis.call('GET', current), redis.call('GET', previous)
      seen = tonumber(now or '0') + math.floor(tonumber(before or '0') * weight)
    end
    if over == 0 and seen ~= nil and seen + 1 > limit then
      over, count = i + 1, seen + 1
    end
  end
  if over == 0 then
    for i = 0, n - 1 do
      local kind, current = ARGV[a + 3 * i], KEYS[k + 2 * i]
      if kind == 's' then
        if not known[i] then
          redis.call('SADD', current, ARGV[a + 3 * i + 2])
          redis.call('EXPIRE', current, ttl)
        end
      else
        redis.call('INCR', current)
        redis.call('EXPIRE', current, ttl)
      end
    end
  end
  answers[#answers + 1] = over
  answers[#answers + 1] = count
  a = a + 3 * n
  k = k + 2 * n
end
return answers
"""


@dataclass(frozen=True)
class Hold:
    """Why a message is held for review: `code` (held:velocity:<limit>) and a reason a person can read."""

    code: str
    reason: str


@dataclass(frozen=True)
class Outgoing:
    """What the limits look at in one new message."""

    channel: str
    recipient: str  # normalised: E.164 (whatsapp:+… on WhatsApp), an address for email
    purpose: str = ""
    key_id: int | None = None
    key_name: str = ""


@dataclass(frozen=True)
class _Limits:
    recipient: int
    otp_recipient: int
    prefix_digits: int
    prefix: int
    otp_prefix: int
    key: int
    otp_key: int


@dataclass(frozen=True)
class _Check:
    scope: str  # RECIPIENT, PREFIX or KEY
    otp: bool  # the one-time-code limit, or the one for every message
    key: str  # without its window
    limit: int
    member: str = ""  # a set's member: the number, for distinct numbers per prefix
    label: str = ""  # what the reason names: the recipient, +prefix, the key


@functools.cache
def _limits() -> _Limits:
    values = [max(int(getattr(settings, name)), 0) for name in LIMITS]
    return _Limits(*values)


@receiver(setting_changed)
def _forget_limits(*, setting: str, **kwargs: Any) -> None:
    if setting in LIMITS:
        _limits.cache_clear()


def number_prefix(recipient: str, digits: int) -> str:
    """The range a number belongs to: its first `digits` digits after the + (+447700900123 → 4477009 for 7)."""
    return recipient.removeprefix("whatsapp:").removeprefix("+")[:digits]


def _checks(message: Outgoing, limits: _Limits) -> list[_Check]:
    """The limits that apply to one message, in the order they are reported: recipient, prefix, key."""
    channel, recipient, otp = message.channel, message.recipient, message.purpose == OTP
    checks: list[_Check] = []
    if channel not in RECIPIENT_CHANNELS:
        return checks
    if limits.recipient:
        checks.append(_Check(RECIPIENT, False, f"r:{channel}:{recipient}", limits.recipient, label=recipient))
    if otp and limits.otp_recipient:
        checks.append(_Check(RECIPIENT, True, f"ro:{channel}:{recipient}", limits.otp_recipient, label=recipient))
    if channel not in PHONE_CHANNELS:
        return checks
    if limits.prefix or (otp and limits.otp_prefix):
        number = recipient.removeprefix("whatsapp:")
        prefix = number_prefix(number, limits.prefix_digits)
        if limits.prefix:
            checks.append(_Check(PREFIX, False, f"p:{channel}:{prefix}", limits.prefix, number, f"+{prefix}"))
        if otp and limits.otp_prefix:
            checks.append(_Check(PREFIX, True, f"po:{channel}:{prefix}", limits.otp_prefix, number, f"+{prefix}"))
    if message.key_id is not None:
        name = f"API key {message.key_name}" if message.key_name else f"API key #{message.key_id}"
        if limits.key:
            checks.append(_Check(KEY, False, f"k:{message.key_id}", limits.key, label=name))
        if otp and limits.otp_key:
            checks.append(_Check(KEY, True, f"ko:{message.key_id}", limits.otp_key, label=name))
    return checks


def velocity_applies(purpose: str) -> bool:
    """Whether any limit may apply to a message of this purpose: when not, creating it asks nothing of Redis."""
    limits = _limits()
    if limits.recipient or limits.prefix or limits.key:
        return True
    return purpose == OTP and bool(limits.otp_recipient or limits.otp_prefix or limits.otp_key)


def velocity_check(
    *, channel: str, recipient: str, purpose: str = "", key_id: int | None = None, key_name: str = ""
) -> Hold | None:
    """Count one new message against the limits that apply to it: None when it may go (and is counted), else why
    it is held. One Redis call, or none when no limit applies."""
    outgoing = Outgoing(channel=channel, recipient=recipient, purpose=purpose, key_id=key_id, key_name=key_name)
    return velocity_check_many([outgoing])[0]


def velocity_check_many(messages: Sequence[Outgoing]) -> list[Hold | None]:
    """velocity_check() for many messages in one Redis call, in order: each is counted after those before it.

    If Redis cannot be reached, one-time codes are held (code held:velocity:unchecked) and other messages pass:
    an unchecked code is the traffic pumping is made of, while an ordinary message's limits are an operator's
    choice not worth refusing every message for while Redis is away (docs/guard.md says why).
    """
    limits = _limits()
    checks = [_checks(message, limits) for message in messages]
    if not any(checks):
        return [None] * len(messages)
    keys: list[str] = []
    args: list[Any] = []
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    # What is left of the previous window within the last hour.
    weight = 1 - (now % WINDOW_SECONDS) / WINDOW_SECONDS
    args += [f"{weight:.6f}", 2 * WINDOW_SECONDS + 60]
    for message_checks in checks:
        args.append(len(message_checks))
        for check in message_checks:
            keys += [f"{KEY_PREFIX}:{check.key}:{window}", f"{KEY_PREFIX}:{check.key}:{window - 1}"]
            args += ["s" if check.scope == PREFIX else "c", check.limit, check.member]
    try:
        answers = _script()(keys=keys, args=args)
    except RedisError as error:
        logger.warning("Velocity limits not checked, Redis unreachable: %s", error)
        return [_unchecked() if any(check.otp for check in c) else None for c in checks]
    holds: list[Hold | None] = []
    for index, message_checks in enumerate(checks):
        over, count = int(answers[2 * index]), int(answers[2 * index + 1])
        holds.append(_hold(message_checks[over - 1], count) if over else None)
    return holds


@functools.cache
def _script_for(config: RedisConfig) -> Any:
    # redis-py's Script: EVALSHA, loading the script once per Redis server when it is missing.
    return shared_client(config).register_script(_SCRIPT)


def _script() -> Any:
    return _script_for(RedisConfig.from_settings(settings))


def _hold(check: _Check, count: int) -> Hold:
    what = "one-time codes" if check.otp else "messages"
    limit = f"the one-time-code limit of {check.limit:,}" if check.otp else f"the limit of {check.limit:,}"
    if check.scope == RECIPIENT:
        text = f"{count:,} {what} to {check.label} in the last hour passed {limit}"
        text += "." if check.otp else " per recipient (RECIPIENT_HOURLY_LIMIT)."
    elif check.scope == PREFIX:
        text = f"{count:,} distinct numbers in {check.label} in the last hour passed {limit}"
        text += "." if check.otp else " per prefix (PREFIX_DISTINCT_PER_HOUR)."
    else:
        text = f"{count:,} {what} from {check.label} in the last hour passed {limit}"
        text += "." if check.otp else " per key (KEY_HOURLY_LIMIT)."
    return Hold(code=f"held:velocity:{check.scope}", reason=f"Held for review: {text}")


def _unchecked() -> Hold:
    return Hold(
        code=f"held:velocity:{UNCHECKED}",
        reason="Held for review: the velocity limits could not be checked (Redis unreachable), and one-time codes "
        "are not sent unchecked.",
    )
