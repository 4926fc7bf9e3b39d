// The queue monitor's "retry these" / "cancel these" steps: submit the next step by itself, a moment after the
// page shows the progress (the button stays for browsers without scripts).
(function () {
  var form = document.getElementById("tidings-continue");
  if (form) { window.setTimeout(function () { form.submit(); }, 300); }
})();
