// The compose page's live count under the body: characters as you type, against the 1,600 that SMS and WhatsApp
// take (Twilio's limit). Preview gives the exact encoding and segments, computed by the server.
(function () {
  "use strict";
  const body = document.getElementById("id_body");
  const channel = document.getElementById("id_channel");
  if (!body || !channel) return;
  const LIMIT = 1600;
  const count = document.createElement("div");
  count.className = "help";
  count.id = "body-count";
  count.setAttribute("aria-live", "polite");
  body.closest(".form-row").append(count);

  function update() {
    const characters = Array.from(body.value).length; // code points, as the server counts them
    const limited = channel.value === "sms" || channel.value === "whatsapp";
    count.textContent = limited
      ? `${characters.toLocaleString()} of ${LIMIT.toLocaleString()} characters` +
        (characters > LIMIT ? ": too long to send." : ". Preview shows the segments.")
      : `${characters.toLocaleString()} characters`;
    count.style.color = limited && characters > LIMIT ? "var(--error-fg)" : "";
  }
  body.addEventListener("input", update);
  channel.addEventListener("change", update);
  update();
})();
