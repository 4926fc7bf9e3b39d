import pytest

from content.services.sms_segments import GSM7, UCS2, body_length_problem, sms_replace_lookalikes, sms_segments


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(0, 0, 160), (1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153)],
)
def test_gsm7_text_takes_160_characters_in_one_segment_and_153_per_segment_when_split(length, segments, per_segment):
    result = sms_segments("a" * length)
    assert result.encoding == GSM7
    assert (result.characters, result.units, result.segments) == (length, length, segments)
    assert result.units_per_segment == per_segment
    assert result.warnings == []


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67)],
)
def test_ucs2_text_takes_70_characters_in_one_segment_and_67_per_segment_when_split(length, segments, per_segment):
    result = sms_segments("ж" * length)
    assert result.encoding == UCS2
    assert (result.characters, result.units, result.segments) == (length, length, segments)
    assert result.units_per_segment == per_segment


def test_accented_letters_of_the_gsm7_alphabet_keep_gsm7():
    result = sms_segments("Ç Ä Ö Ñ Ü ä ö ñ ü à è é ù ì ò å Å æ Æ ø Ø ß É ¿ ¡ £ ¥ § Δ Ω")
    assert result.encoding == GSM7


def test_accented_letters_outside_the_gsm7_alphabet_switch_to_ucs2():
    result = sms_segments("Ça coûte 5€ à Curaçao")
    assert result.encoding == UCS2
    assert [stray.character for stray in result.stray_characters] == ["û", "ç"]


def test_extension_characters_cost_two_septets():
    result = sms_segments("{[€]}")
    assert result.encoding == GSM7
    assert (result.characters, result.units, result.segments) == (5, 10, 1)


def test_a_single_segment_holds_160_septets_including_extension_characters():
    assert sms_segments("a" * 158 + "€").segments == 1
    assert sms_segments("a" * 159 + "€").segments == 2


def test_an_extension_character_is_never_split_across_two_segments():
    # 306 septets would be two full segments, but the escape pair cannot straddle the boundary at 153.
    text = "a" * 152 + "€" + "a" * 152
    result = sms_segments(text)
    assert result.units == 306
    assert result.segments == 3


def test_an_emoji_is_two_code_units_and_is_never_split_across_two_segments():
    assert sms_segments("a" * 68 + "😀").units == 70
    assert sms_segments("a" * 68 + "😀").segments == 1
    text = "a" * 66 + "😀" + "a" * 66  # 134 code units: two full segments if the pair could be split
    result = sms_segments(text)
    assert (result.encoding, result.units, result.segments) == (UCS2, 134, 3)


def test_one_stray_character_switches_the_whole_message_to_ucs2_with_a_warning_naming_it():
    text = "Hi Ada, it\u2019s ready. " + "x" * 120  # 141 characters: 1 GSM-7 segment, 3 in UCS-2
    result = sms_segments(text)
    assert result.encoding == UCS2
    assert result.segments == 3
    assert [(s.character, s.position, s.name) for s in result.stray_characters] == [
        ("\u2019", 11, "RIGHT SINGLE QUOTATION MARK")
    ]
    assert result.segments_if_replaced == 1
    [warning] = result.warnings
    assert "switch the whole message to UCS-2" in warning
    assert "RIGHT SINGLE QUOTATION MARK" in warning
    assert "at character 11" in warning
    assert 'replace it with "\'"' in warning
    assert "1 segment(s) instead of 3" in warning


def test_a_character_without_gsm7_look_alike_is_named_without_a_suggestion():
    result = sms_segments("Merci 🙏")
    assert result.segments_if_replaced is None
    assert "PERSON WITH FOLDED HANDS" in result.warnings[0]
    assert "replace" not in result.warnings[0]


def test_look_alikes_are_replaced_by_their_gsm7_equivalents():
    assert sms_replace_lookalikes("\u201cIt\u2019s\u201d \u2013 done\u2026") == '"It\'s" - done...'


def test_a_body_over_1600_characters_is_flagged():
    result = sms_segments("a" * 1601)
    assert result.segments == 11
    assert any("over 1600" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("channel", "length", "problem"),
    [
        ("sms", 1600, None),
        ("sms", 1601, "The body is 1,601 characters (11 segments); an SMS takes at most 1,600 characters."),
        ("whatsapp", 1601, "The body is 1,601 characters; a WhatsApp message takes at most 1,600 characters."),
        ("messenger", 2000, None),
        ("messenger", 2001, "The body is 2,001 characters; a Messenger message takes at most 2,000 characters."),
        ("email", 100_000, None),
    ],
)
def test_a_body_over_its_channels_limit_is_named_with_its_count(channel, length, problem):
    assert body_length_problem(channel=channel, body="x" * length) == problem
