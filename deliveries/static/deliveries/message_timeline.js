// The message page's timeline: while the message is in flight (not yet delivered, failed, cancelled…) fetch the
// timeline every three seconds and replace it; stop once the message has settled. A static file, so the admin's
// Content-Security-Policy can refuse every inline script.
(function () {
  "use strict";
  const timeline = document.getElementById("message-timeline");
  if (!timeline || timeline.dataset.settled) return;
  const status = document.getElementById("message-status");
  async function refresh() {
    let data = null;
    try {
      const response = await fetch(timeline.dataset.url, { credentials: "same-origin" });
      if (response.ok) data = await response.json();
    } catch (error) {
      data = null; // offline for a moment: try again at the next tick
    }
    if (data) {
      timeline.innerHTML = data.html; // rendered and escaped by the server's template
      if (status) {
        status.textContent = data.status_label;
        status.dataset.messageStatus = data.status;
      }
      if (data.settled) {
        // The buttons and fields may no longer fit the new status: one reload shows the page as it now is.
        if (timeline.dataset.status !== data.status) window.location.reload();
        return;
      }
    }
    setTimeout(refresh, 3000);
  }
  setTimeout(refresh, 3000);
})();
