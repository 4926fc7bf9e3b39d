"""How an SMS will be encoded and how many segments (the unit carriers bill) it takes.

GSM-7 (3GPP TS 23.038) fits 160 septets in one segment, or 153 per segment once the message is split (the
user data header takes the rest). One character outside the GSM-7 alphabet switches the *whole* message to UCS-2
(UTF-16 on the wire): 70 code units in one segment, 67 per segment when split. Extension characters such as
`€ [ ] { } ^ ~ | \\` cost two septets (escape + character); characters outside the Basic Multilingual Plane
(most emoji) cost two UTF-16 code units. Neither pair is ever split across two segments, so a split message can
need one more segment than a plain division says. Which characters are GSM-7, and their cost, comes from the
`gsm0338` codec; the splitting rules are here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Units (septets or UTF-16 code units) in one segment when the message fits in one, and per segment when split.
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}

# Twilio refuses bodies longer than 1600 characters (error 21617).
MAX_BODY_CHARACTERS = 1600
# The longest body each text channel carries: Twilio's for SMS and WhatsApp, Meta's Send API's for Messenger.
BODY_CHARACTER_LIMITS = {"sms": MAX_BODY_CHARACTERS, "whatsapp": MAX_BODY_CHARACTERS, "messenger": 2000}
_A_MESSAGE_OF = {"sms": "an SMS", "whatsapp": "a WhatsApp message", "messenger": "a Messenger message"}

# Look-alikes that word processors and phones type for GSM-7 characters; suggested as replacements.
GSM7_LOOKALIKES = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark (the usual stray apostrophe)
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",  # no-break space
    "\u2009": " ",
    "\u200b": "",  # zero-width space
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2022": "-",
}


@lru_cache(maxsize=4096)
def gsm7_septets(character: str) -> int:
    """Septets the character takes in GSM-7 (1, or 2 for the extension table), or 0 if it is not GSM-7."""
    try:
        return len(character.encode("gsm03.38"))
    except UnicodeEncodeError:
        return 0


def _utf16_units(character: str) -> int:
    return 2 if ord(character) > 0xFFFF else 1


@dataclass(frozen=True)
class StrayCharacter:
    """A character that forces UCS-2, where it is, and what GSM-7 text could replace it (None if nothing)."""

    character: str
    position: int  # 1-based, in characters
    name: str
    replacement: str | None

    def describe(self) -> str:
        shown = repr(self.character) if self.character.isspace() or not self.character.isprintable() else self.character
        text = f"{shown} ({self.name}) at character {self.position}"
        if self.replacement is not None:
            text += f"; replace it with {self.replacement!r}" if self.replacement else "; remove it"
        return text


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # GSM7 or UCS2
    characters: int  # what a person counts: code points
    units: int  # what the network counts: septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    units_per_segment: int  # the limit that applied: 160/153 or 70/67
    stray_characters: list[StrayCharacter] = field(default_factory=list)
    # Segments the message would take if the stray characters were replaced by their GSM-7 look-alikes.
    segments_if_replaced: int | None = None

    @property
    def warnings(self) -> list[str]:
        """Readable warnings for the preview: a switch to UCS-2, and a body too long to send."""
        messages = []
        if self.stray_characters:
            count = len(self.stray_characters)
            listed = "; ".join(stray.describe() for stray in self.stray_characters[:5])
            more = f" and {count - 5} more" if count > 5 else ""
            cost = ""
            if self.segments_if_replaced is not None and self.segments_if_replaced < self.segments:
                cost = f" Replacing them would send {self.segments_if_replaced} segment(s) instead of {self.segments}."
            messages.append(
                f"{count} character(s) outside GSM-7 switch the whole message to UCS-2 (70 characters per segment "
                f"instead of 160): {listed}{more}.{cost}"
            )
        if self.characters > MAX_BODY_CHARACTERS:
            messages.append(
                f"{self.characters} characters: providers refuse SMS bodies over {MAX_BODY_CHARACTERS} characters."
            )
        return messages


def _count_segments(costs: list[int], single: int, multi: int) -> int:
    """Segments for a message whose characters cost `costs` units each; a character is never split."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_segments(text: str) -> SmsSegments:
    """The encoding, length and segment count of an SMS body, with the characters that force UCS-2."""
    septets = [gsm7_septets(character) for character in text]
    if all(septets):
        single, multi = LIMITS[GSM7]
        return SmsSegments(
            encoding=GSM7,
            characters=len(text),
            units=sum(septets),
            segments=_count_segments(septets, single, multi),
            units_per_segment=single if sum(septets) <= single else multi,
        )
    stray = [
        StrayCharacter(
            character=character,
            position=index + 1,
            name=unicodedata.name(character, f"U+{ord(character):04X}"),
            replacement=GSM7_LOOKALIKES.get(character),
        )
        for index, (character, cost) in enumerate(zip(text, septets, strict=True))
        if not cost
    ]
    units = [_utf16_units(character) for character in text]
    single, multi = LIMITS[UCS2]
    replaceable = all(
        stray.replacement is not None and all(gsm7_septets(c) for c in stray.replacement) for stray in stray
    )
    segments_if_replaced = None
    if replaceable:
        segments_if_replaced = sms_segments(sms_replace_lookalikes(text)).segments
    return SmsSegments(
        encoding=UCS2,
        characters=len(text),
        units=sum(units),
        segments=_count_segments(units, single, multi),
        units_per_segment=single if sum(units) <= single else multi,
        stray_characters=stray,
        segments_if_replaced=segments_if_replaced,
    )


def sms_replace_lookalikes(text: str) -> str:
    """The text with typographic look-alikes (curly quotes, dashes, no-break spaces) replaced by GSM-7 ones."""
    return "".join(GSM7_LOOKALIKES.get(character, character) for character in text)


def body_length_problem(*, channel: str, body: str) -> str | None:
    """Why `body` is too long for `channel`, with its count (and an SMS's segments), or None. The one wording of
    this limit, whether the body was given or rendered from a template, in the API, the admin or a bulk send."""
    limit = BODY_CHARACTER_LIMITS.get(channel)
    if limit is None or len(body) <= limit:
        return None
    counted = f"{len(body):,} characters"
    if channel == "sms" and len(body) <= 100 * limit:  # segments of a runaway render say nothing more
        counted += f" ({sms_segments(body).segments} segments)"
    return f"The body is {counted}; {_A_MESSAGE_OF[channel]} takes at most {limit:,} characters."
