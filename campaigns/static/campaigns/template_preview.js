// Live preview of a message template in the admin: posts the form's content to the preview view as you type
// and shows the rendered text, the HTML, and for SMS the encoding, character and segment counts.
(function () {
  "use strict";
  const panel = document.getElementById("live-preview");
  if (!panel) return;
  const form = panel.closest("form");
  const fields = ["channel", "subject", "body", "html_body", "variables", "sample_context"];
  const part = (name) => panel.querySelector(`[data-preview="${name}"]`);
  let timer = null;
  let latest = 0;

  function show(data) {
    const errors = part("errors");
    errors.replaceChildren();
    for (const [field, messages] of Object.entries(data.errors || {})) {
      for (const message of messages) {
        const item = document.createElement("li");
        item.textContent = `${field}: ${message}`;
        errors.append(item);
      }
    }
    errors.hidden = data.ok;
    part("subject-row").hidden = !data.subject;
    part("subject").textContent = data.subject || "";
    part("body").textContent = data.ok ? data.body : "";
    part("body").hidden = !data.ok;
    const html = part("html");
    html.hidden = !data.html_body;
    html.srcdoc = data.html_body || "";
    const sms = part("sms");
    const warnings = part("warnings");
    warnings.replaceChildren();
    sms.hidden = !data.sms;
    if (data.sms) {
      const s = data.sms;
      sms.textContent = `${s.encoding} · ${s.characters} characters · ${s.segments} segment${s.segments === 1 ? "" : "s"} (${s.units_per_segment} per segment)`;
      for (const warning of s.warnings) {
        const note = document.createElement("p");
        note.className = "errornote";
        note.textContent = warning;
        warnings.append(note);
      }
    }
  }

  async function refresh() {
    const body = new FormData();
    for (const name of fields) {
      const input = form.elements[name];
      if (input) body.append(name, input.value);
    }
    body.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    const request = ++latest;
    const response = await fetch(panel.dataset.url, { method: "POST", body, credentials: "same-origin" });
    if (request !== latest || !response.ok) return; // a newer request is on its way, or the session ended
    show(await response.json());
  }

  form.addEventListener("input", (event) => {
    if (!fields.includes(event.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "channel") refresh();
  });
  refresh();
})();
