// The few lines of behaviour htmx does not give us; no framework.
(function () {
  "use strict";
  // Polls run only while the tab is visible and nobody is typing inside the polled element (a 2 s refresh
  // must not eat a half-typed weight). Polled elements carry data-poll and hx-trigger="every Ns, umw:visible";
  // the guard is an event listener, not an hx-trigger filter, because filters need eval and the
  // Content-Security-Policy forbids it (htmx runs with allowEval: false).
  function mayPoll(el) {
    if (document.visibilityState !== "visible") return false;
    var active = document.activeElement;
    return !(active && active.tagName === "INPUT" && el.contains(active));
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var el = e.detail.elt;
    if (el && el.hasAttribute && el.hasAttribute("data-poll") && !mayPoll(el)) e.preventDefault();
  });
  // Back on a hidden tab: refresh at once instead of waiting for the next tick.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !window.htmx) return;
    document.querySelectorAll("[data-poll]").forEach(function (el) {
      window.htmx.trigger(el, "umw:visible");
    });
  });
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
