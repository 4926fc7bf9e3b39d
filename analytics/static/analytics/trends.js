// The Trends panel's two charts, drawn from the JSON the panel carries in its data-chart attribute. A file of its
// own: the admin's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  var panel = document.getElementById("tidings-trends");
  if (!panel || typeof Chart === "undefined") return;
  var data = JSON.parse(panel.dataset.chart);
  var style = getComputedStyle(document.documentElement);
  Chart.defaults.color = style.getPropertyValue("--body-quiet-color").trim() || "#666";
  Chart.defaults.borderColor = style.getPropertyValue("--hairline-color").trim() || "#ddd";

  function datasets(series) {
    return series.map(function (s) {
      return { label: s.label, data: s.data, borderColor: s.color, backgroundColor: s.color,
               pointRadius: data.labels.length > 60 ? 0 : 2, borderWidth: 2, cubicInterpolationMode: "monotone", spanGaps: true };
    });
  }
  function options(percent) {
    return {
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: function (item) {
          var value = item.parsed.y;
          if (value === null || value === undefined) return item.dataset.label + ": –";
          return item.dataset.label + ": " + value.toLocaleString() + (percent ? " %" : "");
        } } }
      },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 16, maxTicksLimit: 12 } },
        y: percent ? { min: 0, suggestedMax: 100, ticks: { callback: function (v) { return v + " %"; } } }
                   : { beginAtZero: true, ticks: { precision: 0 } }
      }
    };
  }
  new Chart(document.getElementById("tidings-trends-volumes"),
            { type: "line", data: { labels: data.labels, datasets: datasets(data.volumes) }, options: options(false) });
  new Chart(document.getElementById("tidings-trends-rates"),
            { type: "line", data: { labels: data.labels, datasets: datasets(data.rates) }, options: options(true) });
})();
