// The dashboard's "Now" chart: messages sent per minute over the last hour, stacked by channel, and failed as a
// line. Its data is the page's #tidings-now-data (json_script); Chart.js is the vendored 4.5.1.
(function () {
  var canvas = document.getElementById("tidings-now-chart");
  var source = document.getElementById("tidings-now-data");
  if (!canvas || !source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var colours = { sms: "#2f6f9f", email: "#6a9f2f", whatsapp: "#1a9c8c", messenger: "#8a5cc2" };
  var datasets = Object.keys(data.sent).map(function (channel) {
    return { type: "bar", label: channel + " sent", data: data.sent[channel], backgroundColor: colours[channel] || "#888", stack: "sent" };
  });
  datasets.push({ type: "line", label: "failed or undelivered", data: data.failed, borderColor: "#ba2121",
                  backgroundColor: "#ba2121", pointRadius: 0, borderWidth: 2, stack: "failed" });
  new Chart(canvas, {
    data: { labels: data.labels, datasets: datasets },
    options: {
      maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true, title: { display: true, text: "minute (UTC)" }, ticks: { maxTicksLimit: 13 } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "messages per minute" }, ticks: { precision: 0 } }
      },
      plugins: { legend: { position: "bottom" } }
    }
  });
})();
