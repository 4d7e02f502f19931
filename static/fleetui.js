// Fleet UI's only script (CSP-friendly: no inline code anywhere).
// 1. TimedWait countdowns: [data-countdown] holds the seconds left when the
//    server rendered it; count down from there once a second.
// 2. The Approve dialog: htmx loads the review into <dialog id="dialog">,
//    which then opens as a modal (focus moves in, Esc closes it); a
//    successful approval from inside it closes it; closing returns focus
//    to the opener.
// 3. The run page's cluster map: the "only failing" toggle and the stage
//    tables a person opened or closed stay so when a live push or a refresh
//    replaces #timeline.
(function () {
  "use strict";
  var seen = new WeakMap();

  function humanDuration(seconds) {
    if (seconds < 120) return seconds + "s";
    var minutes = Math.floor(seconds / 60), rest = seconds % 60;
    if (minutes < 10) return rest ? minutes + "m" + rest + "s" : minutes + "m";
    return minutes + "m";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (!seen.has(el)) seen.set(el, now);
      var start = parseInt(el.getAttribute("data-countdown"), 10) || 0;
      var left = Math.max(0, start - Math.floor((now - seen.get(el)) / 1000));
      el.textContent = left > 0 ? humanDuration(left) + " left" : "wait over; the engine moves on at its next pass";
    });
  }

  function dialog() { return document.getElementById("dialog"); }

  document.addEventListener("htmx:afterSwap", function (event) {
    var d = dialog();
    if (d && event.detail.target === d && !d.open) d.showModal();
    tick();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var d = dialog();
    if (d && d.open && d.contains(event.detail.elt) && event.detail.elt.tagName === "FORM" && event.detail.successful) {
      d.close();
      d.innerHTML = "";
    }
  });

  // An action the server refused (403, 404, 5xx) says so instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = status === 403 ? "Not allowed: your role does not permit this action."
      : "The server could not do this (HTTP " + status + "). Reload the page and try again.";
    var where = document.getElementById("content");
    var notice = document.createElement("p");
    notice.className = "notice notice-error";
    notice.setAttribute("role", "alert");
    notice.textContent = text;
    if (where) where.insertBefore(notice, where.firstChild);
  });

  // Focus goes back to what opened the dialog when it closes (Esc, Cancel,
  // or after a successful action); if a swap replaced the opener, to the
  // element that now carries its id.
  var opener = null;
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) { var d = dialog(); if (d) d.close(); }
    var opens = event.target.closest("[data-opens-dialog]");
    if (opens) opener = opens;
  });
  document.addEventListener("close", function (event) {
    if (event.target !== dialog() || !opener) return;
    var back = opener.isConnected ? opener : (opener.id && document.getElementById(opener.id));
    opener = null;
    if (back) back.focus();
  }, true);

  var onlyFailing = null, tables = {};
  document.addEventListener("change", function (event) {
    if (event.target.id === "only-failing") onlyFailing = event.target.checked;
  });
  document.addEventListener("click", function (event) {
    var summary = event.target.closest("details.cluster-table > summary");
    if (summary && summary.parentNode.id) tables[summary.parentNode.id] = !summary.parentNode.open;
  });
  document.addEventListener("htmx:load", function () {
    var box = document.getElementById("only-failing");
    if (box && onlyFailing !== null) box.checked = onlyFailing;
    Object.keys(tables).forEach(function (id) {
      var table = document.getElementById(id);
      if (table) table.open = tables[id];
    });
  });

  tick();
  setInterval(tick, 1000);
})();
