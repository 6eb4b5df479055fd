// The few lines of behaviour htmx does not give us; no framework.
(function () {
  "use strict";
  // Polls run only while the tab is visible and nobody is typing inside the polled element (a 2 s refresh
  // must not eat a half-typed weight). Polled elements carry data-poll and hx-trigger="every Ns, umw:visible";
  // the guard is an event listener, not an hx-trigger filter, because filters need eval and the
  // Content-Security-Policy forbids it (htmx runs with allowEval: false).
  // A poll may also name a form whose fields pause it while focused (data-poll-guard="#connfilters": no
  // refresh while a filter is being typed) and a Pause button (data-pause="conn-pause", aria-pressed).
  function typingIn(container) {
    var active = document.activeElement;
    return !!(container && active && (active.tagName === "INPUT" || active.tagName === "SELECT") &&
      container.contains(active));
  }
  function mayPoll(el) {
    if (document.visibilityState !== "visible") return false;
    if (typingIn(el)) return false;
    var guard = el.getAttribute("data-poll-guard");
    if (guard && typingIn(document.querySelector(guard))) return false;
    var pause = el.getAttribute("data-pause");
    var button = pause && document.getElementById(pause);
    return !(button && button.getAttribute("aria-pressed") === "true");
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-pause-label]");
    if (!button) return;
    var paused = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    button.textContent = button.getAttribute(paused ? "data-resume-label" : "data-pause-label");
    if (!paused && window.htmx) {  // resumed: refresh now, not at the next tick
      document.querySelectorAll('[data-pause="' + button.id + '"]').forEach(function (el) {
        window.htmx.trigger(el, "umw:visible");
      });
    }
  });
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
