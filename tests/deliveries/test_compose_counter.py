"""The compose page's live SMS counter (deliveries/static/deliveries/compose_counter.js) counts as the server does."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from content.services.sms_segments import gsm7_septets, sms_segments

SCRIPT = Path(__file__).parents[2] / "deliveries/static/deliveries/compose_counter.js"
SAMPLES = ["", "Hi", "x" * 160, "x" * 161, "€" * 80, "€" * 81, "Caf\u00e9 \u2019 ok", "😀" * 35, "😀" * 36, "a" * 1601]


def js_string(name: str) -> str:
    """The value of the JS constant `name`, written as a JSON-compatible string literal."""
    found = re.search(rf'const {name} =\s*("(?:[^"\\]|\\.)*");', SCRIPT.read_text())
    return json.loads(found.group(1))


def test_the_counters_alphabets_are_the_gsm0338_codecs():
    basic, extended = js_string("GSM7_BASIC"), js_string("GSM7_EXTENDED")
    assert len(basic) == 128 and len(extended) == 10
    assert all(gsm7_septets(character) == 1 for character in basic)
    assert all(gsm7_septets(character) == 2 for character in extended)
    # No other character of the Basic Multilingual Plane is GSM-7.
    others = (chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF and chr(c) not in basic + extended)
    assert not any(gsm7_septets(character) for character in others)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_the_counter_gives_the_servers_encoding_characters_and_segments():
    program = f"const {{ smsSegments }} = require({json.dumps(str(SCRIPT))});"
    program += f"console.log(JSON.stringify({json.dumps(SAMPLES)}.map(smsSegments)));"
    counted = json.loads(subprocess.run(["node", "-e", program], capture_output=True, check=True, text=True).stdout)
    for text, js in zip(SAMPLES, counted, strict=True):
        server = sms_segments(text)
        assert (js["encoding"], js["characters"], js["segments"], js["unitsPerSegment"]) == (
            server.encoding,
            server.characters,
            server.segments,
            server.units_per_segment,
        ), text
