// Before the page paints: the theme the operator chose last time (else the system's).
(function () {
  var saved = null;
  try { saved = localStorage.getItem("gocast.theme"); } catch (e) { /* private mode */ }
  var light = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches;
  document.documentElement.setAttribute("data-theme", saved || (light ? "light" : "dark"));
})();
