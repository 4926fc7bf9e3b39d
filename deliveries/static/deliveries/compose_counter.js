// The compose page's live SMS count: encoding, characters and segments of the body as it is typed, by the rules of
// content/services/sms_segments.py (the alphabets below are the gsm0338 codec's; a test checks they still are).
(function () {
  "use strict";
  // GSM-7 characters that take one septet, and those of the extension table that take two (escape + character).
  const GSM7_BASIC =
    "\n\r\u001b !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz¡£¤¥§¿ÄÅÆÇÉÑÖØÜßàäåæèéìñòöøùüΓΔΘΛΞΠΣΦΨΩ";
  const GSM7_EXTENDED = "\f[\\]^{|}~€";
  // Units in one segment, and per segment once the message is split.
  const LIMITS = { "GSM-7": [160, 153], "UCS-2": [70, 67] };
  const MAX_BODY_CHARACTERS = 1600; // Twilio refuses longer bodies (error 21617)

  function septets(character) {
    if (GSM7_BASIC.includes(character)) return 1;
    if (GSM7_EXTENDED.includes(character)) return 2;
    return 0;
  }

  function countSegments(costs, single, multi) {
    const total = costs.reduce((sum, cost) => sum + cost, 0);
    if (total === 0) return 0;
    if (total <= single) return 1;
    let segments = 1;
    let used = 0;
    for (const cost of costs) {
      if (used + cost > multi) {
        segments += 1;
        used = 0;
      }
      used += cost;
    }
    return segments;
  }

  function smsSegments(text) {
    const characters = Array.from(text); // code points, as Python counts them
    let costs = characters.map(septets);
    let encoding = "GSM-7";
    if (costs.includes(0)) {
      encoding = "UCS-2";
      costs = characters.map((character) => (character.codePointAt(0) > 0xffff ? 2 : 1));
    }
    const units = costs.reduce((sum, cost) => sum + cost, 0);
    const [single, multi] = LIMITS[encoding];
    return {
      encoding,
      characters: characters.length,
      segments: countSegments(costs, single, multi),
      unitsPerSegment: units <= single ? single : multi,
    };
  }

  if (typeof module === "object") {
    module.exports = { smsSegments }; // under Node, for tests/deliveries/test_compose_counter.py
    return;
  }

  const counter = document.getElementById("sms-count");
  if (!counter) return;
  const form = counter.closest("form");
  const body = form.elements.body;
  const channel = form.elements.channel;

  function show() {
    const sms = channel.value === "sms";
    counter.hidden = !sms || !body.value;
    if (counter.hidden) return;
    const s = smsSegments(body.value);
    let text = `${s.encoding} · ${s.characters} characters · ${s.segments} segment${s.segments === 1 ? "" : "s"}`;
    text += ` (${s.unitsPerSegment} per segment)`;
    if (s.characters > MAX_BODY_CHARACTERS) {
      text += ` · over ${MAX_BODY_CHARACTERS} characters: it will be refused`;
    }
    counter.textContent = text;
    counter.classList.toggle("errornote", s.characters > MAX_BODY_CHARACTERS);
  }

  body.addEventListener("input", show);
  channel.addEventListener("change", show);
  show();
})();
