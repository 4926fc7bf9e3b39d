// The progress panel of a running campaign: refreshes its counts and bars every two seconds while the
// campaign can still change. A static file, not an inline script, so the admin's Content-Security-Policy
// can refuse every inline script.
(function () {
  "use strict";
  const panel = document.getElementById("campaign-progress");
  if (!panel || !panel.dataset.live) return;
  async function refresh() {
    const response = await fetch(panel.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const sentOnly = data.sent - data.delivered - (data.by_status.undelivered || 0);
    const parts = { ...data, sent_only: sentOnly };
    panel.querySelectorAll("[data-count]").forEach((cell) => {
      cell.textContent = data[cell.dataset.count];
    });
    const total = Math.max(data.targeted, 1);
    panel.querySelectorAll("[data-bar]").forEach((bar) => {
      bar.style.width = (100 * parts[bar.dataset.bar]) / total + "%";
    });
    if (["scheduled", "running", "paused"].includes(data.status)) setTimeout(refresh, 2000);
  }
  setTimeout(refresh, 2000);
})();
