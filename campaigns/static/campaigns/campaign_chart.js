// The campaign page's "Over time" chart: messages per hour from the analytics rollup (sent, delivered, failed,
// opened, clicked), read from the page's JSON (json_script), drawn with Chart.js. The same figures are in the
// table below it; hovering a point shows them too. Drawn again when the live panel puts fresh figures in place
// (the "campaign:details" event).
(function () {
  "use strict";
  // Okabe-Ito colours, as on the progress bar; each line dashed its own way, so colour is not the only clue.
  const LINES = [
    ["sent", "Sent", "#56B4E9", []],
    ["delivered", "Delivered", "#009E73", []],
    ["failed", "Failed or undelivered", "#D55E00", [6, 4]],
    ["opened", "Opened", "#E69F00", [2, 2]],
    ["clicked", "Clicked", "#CC79A7", [8, 3, 2, 3]],
  ];
  let chart = null;

  function draw() {
    const canvas = document.getElementById("campaign-chart");
    const source = document.getElementById("campaign-series");
    if (chart) chart.destroy();
    chart = null;
    if (!canvas || !source || typeof Chart === "undefined") return;
    const series = JSON.parse(source.textContent);
    chart = new Chart(canvas, {
      type: series.length < 3 ? "bar" : "line", // a line needs a few hours to say anything
      data: {
        labels: series.map((point) => point.hour.slice(5, 13).replace("T", " ") + ":00"),
        datasets: LINES.map(([key, label, colour, dash]) => ({
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
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 } },
          x: { title: { display: true, text: "Hour (UTC)" } },
        },
      },
    });
  }

  draw();
  document.addEventListener("campaign:details", draw);
})();
