"""The provider forms are encoded exactly as urllib encodes them."""

from urllib.parse import quote_plus, urlencode

from deliveries.shims.urllib import form_encode, form_quote


def test_form_encoding_is_urllibs_to_the_byte():
    texts = [
        "",
        "plain",
        "Hello, world! 100% sure? a+b=c & d/e",
        "https://tidings.example/webhooks/twilio/status/?message=12&attempt=1",
        "caf\u00e9 \u2014 na\u00efve \U0001f600 \u4f60\u597d",
        "~._-*'()!$;:@,[]{}|\\^`\"<>#\n\t\r\x00 ",
        "  two  spaces  ",
        "".join(map(chr, range(128))),  # every ASCII character (the translate table's whole domain)
        "".join(map(chr, range(128))) + "\u00e9",  # and the same through the path for other text
    ]
    for text in texts:
        assert form_quote(text) == quote_plus(text), text
    form = {"To": "+14155550100", "Body": texts[2], "MediaUrl": [texts[3], texts[4]], "From_": "whatsapp:+1 415"}
    assert form_encode(form) == urlencode(form, doseq=True)
    # Anything but strings and lists of them is urllib's own business.
    odd = {"Attempt": 3, "Flag": True, "Raw": b"\xff x"}
    assert form_encode(odd) == urlencode(odd, doseq=True)
