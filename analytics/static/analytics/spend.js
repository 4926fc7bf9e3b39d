// The Spend panel's stacked bars (one chart per currency), drawn from the JSON each chart's element carries in its
// data-chart attribute. A file of its own: the admin's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;
  var style = getComputedStyle(document.documentElement);
  Chart.defaults.color = style.getPropertyValue("--body-quiet-color").trim() || "#666";
  Chart.defaults.borderColor = style.getPropertyValue("--hairline-color").trim() || "#ddd";
  document.querySelectorAll("#tidings-spend canvas[data-chart]").forEach(function (canvas) {
    var data = JSON.parse(canvas.dataset.chart);
    var currency = canvas.dataset.currency;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s) {
          return { label: s.label, data: s.data, backgroundColor: s.color, borderWidth: 0 };
        })
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (item) {
            return item.dataset.label + ": " + item.parsed.y.toLocaleString(undefined, { maximumFractionDigits: 4 }) + " " + currency;
          } } }
        },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: currency } }
        }
      }
    });
  });
})();
