// The campaign page's live panel. Polls the progress JSON every two seconds while the campaign can still change
// (scheduled, running, paused, or completed with receipts still arriving) and updates everything it shows: the
// status badge, the buttons that apply, the counts, the bar, the funnel and its rates; from the polls it measures
// the sending speed and estimates the time remaining. Stops after the poll that says nothing more will change.
// A static file, not an inline script, so the admin's Content-Security-Policy can refuse every inline script;
// every value goes in with textContent, never as markup.
(function () {
  "use strict";
  const panel = document.getElementById("campaign-progress");
  if (!panel || !panel.dataset.live) return;
  const POLL_MS = 2000;
  const DETAILS_EVERY = 8; // polls between two refreshes of the failures, the cost and the chart
  const SPEED_WINDOW_MS = 3 * 60 * 1000; // the speed is measured over the last three minutes of polls
  const samples = []; // [time, messages out] of each poll
  let polls = 0;

  function text(selector, value) {
    document.querySelectorAll(selector).forEach((node) => {
      node.textContent = value;
    });
  }

  function duration(minutes) {
    if (minutes < 1) return "under a minute";
    if (minutes < 90) return "about " + Math.round(minutes) + " min";
    return "about " + (minutes / 60).toFixed(1) + " h";
  }

  function pace(data) {
    const now = Date.now();
    const out = data.sent + (data.by_status.failed || 0) + data.suppressed + data.cancelled;
    samples.push([now, out]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
    if (!data.live || data.status === "completed") {
      text("[data-speed]", "—");
      text("[data-eta]", data.status === "completed" ? "done" : "—");
      return;
    }
    if (data.status === "paused") {
      text("[data-speed]", "paused");
      text("[data-eta]", "paused");
      return;
    }
    const [firstTime, firstOut] = samples[0];
    if (samples.length < 3 || now - firstTime < 5000) return; // still measuring
    const perMinute = ((out - firstOut) * 60000) / (now - firstTime);
    text("[data-speed]", Math.round(perMinute) + " messages/min");
    text("[data-eta]", perMinute > 0 ? duration(data.remaining / perMinute) : data.remaining ? "not moving" : "done");
  }

  function update(data) {
    document.querySelectorAll("[data-campaign-status]").forEach((badge) => {
      badge.textContent = data.status_label;
      badge.style.background = data.status_colour;
    });
    document.querySelectorAll("[data-lifecycle]").forEach((button) => {
      if (button.dataset.lifecycle !== "delete") button.hidden = !data.actions.includes(button.dataset.lifecycle);
    });
    panel.querySelectorAll("[data-settling]").forEach((note) => {
      note.hidden = !data.settle_until;
    });
    panel.querySelectorAll("[data-count]").forEach((cell) => {
      if (cell.dataset.count in data) cell.textContent = data[cell.dataset.count];
    });
    data.bars.forEach((bar) => {
      panel.querySelectorAll('[data-bar="' + bar.key + '"]').forEach((part) => {
        part.style.width = bar.width + "%";
        part.title = part.title.replace(/\d+$/, String(bar.count));
      });
    });
    data.funnel.forEach((step) => {
      const row = panel.querySelector('[data-funnel="' + step.key + '"]');
      if (!row) return;
      row.querySelector("[data-funnel-count]").textContent = step.count;
      row.querySelector("[data-funnel-bar]").style.width = step.width + "%";
      const rate = row.querySelector("[data-funnel-rate]");
      if (step.of && step.tracked) rate.textContent = (step.rate === null ? "—" : step.rate.toFixed(1) + " %") + " of " + step.of;
    });
    pace(data);
  }

  // The failures, the cost and the chart: the server renders them (escaped) and this puts the new part in place of
  // the old one, parsed as an inert document (no script in it runs); the chart then redraws from its new figures.
  async function refreshDetails() {
    const holder = panel.querySelector("[data-details]");
    if (!holder) return;
    try {
      const response = await fetch(holder.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      holder.replaceChildren(...Array.from(fresh.body.childNodes).map((node) => document.adoptNode(node)));
      document.dispatchEvent(new CustomEvent("campaign:details"));
    } catch (error) {
      // kept as it was; the next refresh tries again
    }
  }

  async function refresh() {
    let data = null;
    try {
      const response = await fetch(panel.dataset.url, { credentials: "same-origin" });
      if (response.ok) data = await response.json();
    } catch (error) {
      data = null; // the network hiccupped: try again at the next poll
    }
    polls += 1;
    if (data) update(data);
    if (data && (!data.live || polls % DETAILS_EVERY === 0)) refreshDetails();
    if (!data || data.live) setTimeout(refresh, POLL_MS);
  }
  setTimeout(refresh, POLL_MS);
})();
