// The compose page shows the fields of the chosen channel only. Without this script every group of fields shows under
// its title ("Email only"...), and the server refuses a filled field of another channel either way; with it, the
// groups of other channels are hidden and disabled (a disabled field is not submitted, so what was typed there
// before switching channel neither goes out nor is refused, and comes back on switching back).
(function () {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) return;
  const channel = form.elements.channel;
  const template = form.elements.template;
  const to = form.elements.to;
  const sendAt = form.elements.send_at;
  const sendAtLocal = document.getElementById("send-at-local");
  const PLACEHOLDERS = {
    sms: "+14155550100",
    whatsapp: "+14155550100",
    email: "ada@example.com",
    messenger: "the person's page-scoped id (digits)",
  };

  function showChannel() {
    const chosen = channel.value;
    for (const group of form.querySelectorAll("fieldset[data-channels]")) {
      const applies = group.dataset.channels.split(" ").includes(chosen);
      group.hidden = !applies;
      for (const field of group.querySelectorAll("input, select, textarea")) field.disabled = !applies;
    }
    // Templates are made for one channel: offer only the chosen channel's.
    for (const option of template.options) {
      if (!option.dataset.channel) continue;
      const applies = option.dataset.channel === chosen;
      option.hidden = !applies;
      option.disabled = !applies;
      if (!applies && option.selected) template.value = "";
    }
    to.placeholder = PLACEHOLDERS[chosen] || "";
  }

  // The field is read as UTC (the server says so); say what that is where the browser is.
  function showLocalTime() {
    const value = sendAt.value;
    if (!value) {
      sendAtLocal.textContent = "";
      return;
    }
    const when = new Date(value + (value.length === 16 ? ":00" : "") + "Z");
    if (Number.isNaN(when.getTime())) {
      sendAtLocal.textContent = "";
      return;
    }
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const local = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
    sendAtLocal.textContent = `${value.replace("T", " ")} UTC is ${local} in your time zone (${zone}).`;
  }

  channel.addEventListener("change", showChannel);
  sendAt.addEventListener("input", showLocalTime);
  showChannel();
  showLocalTime();
})();
