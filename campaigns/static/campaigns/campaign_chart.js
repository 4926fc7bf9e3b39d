// The campaign page's "Over time" chart: messages per hour from the analytics rollup (sent, delivered, failed,
// opened, clicked), read from the page's JSON (json_script), drawn with Chart.js. The same figures are in the
// table below it; hovering a point shows them too.
(function () {
  "use strict";
  const canvas = document.getElementById("campaign-chart");
  const source = document.getElementById("campaign-series");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const series = JSON.parse(source.textContent);
  // Okabe-Ito colours, as on the progress bar; failed dashed, so colour is not the only clue.
  const lines = [
    ["sent", "Sent", "#56B4E9", []],
    ["delivered", "Delivered", "#009E73", []],
    ["failed", "Failed or undelivered", "#D55E00", [6, 4]],
    ["opened", "Opened", "#E69F00", [2, 2]],
    ["clicked", "Clicked", "#CC79A7", [8, 3, 2, 3]],
  ];
  const labels = series.map((point) => point.hour.slice(5, 13).replace("T", " ") + ":00");
  new Chart(canvas, {
    type: "line",
    data: {
      labels: labels,
      datasets: lines.map(([key, label, colour, dash]) => ({
        label: label,
        data: series.map((point) => point[key]),
        borderColor: colour,
        backgroundColor: colour,
        borderDash: dash,
        tension: 0.2,
        pointRadius: series.length > 48 ? 0 : 3,
      })),
    },
    options: {
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { title: { display: true, text: "Hour (UTC)" } } },
    },
  });
})();
