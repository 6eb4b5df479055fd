// The few lines of behaviour htmx does not give us; no framework.
(function () {
  "use strict";
  // Polls run only while the tab is visible and nobody is typing inside the polled element
  // (a 2 s refresh must not eat a half-typed weight).
  window.umwPoll = function (id) {
    if (document.visibilityState !== "visible") return false;
    var el = id && document.getElementById(id);
    return !(el && el.contains(document.activeElement) && document.activeElement.tagName === "INPUT");
  };
  // The live log only grows at the top; keep the page light by dropping the oldest rows past 500.
  document.addEventListener("htmx:afterSwap", function () {
    var rows = document.querySelectorAll("#log-rows tr[data-id]");
    for (var i = 500; i < rows.length; i++) rows[i].remove();
  });
  // An error answer (403, 500, broker trouble) is shown, not swallowed.
  document.addEventListener("htmx:responseError", function (e) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    var p = document.createElement("p");
    p.className = "msg error";
    var status = e.detail.xhr.status;
    p.textContent = status === 403 ? "Not allowed: your role may only look." : "Request failed (HTTP " + status + ").";
    flash.replaceChildren(p);
  });
})();
