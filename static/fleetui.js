// Fleet UI's only script (CSP-friendly: no inline code anywhere).
// 1. TimedWait countdowns: [data-countdown] holds the seconds left when the
//    server rendered it; count down from there once a second.
// 2. The Approve dialog: htmx loads the review into <dialog id="dialog">,
//    which then opens as a modal (focus moves in, Esc closes it); a
//    successful approval from inside it closes it; closing returns focus
//    to the opener.
// 3. The theme toggle (the nav's "Dark theme" button, and "Follow system
//    theme" once one is chosen): switches <html
//    data-theme> at once and tells the server, which remembers it for the
//    person (rollouts.views.preferences); without JavaScript the form posts
//    and the page comes back in the new theme.
// 4. Tables read as cards on a phone: below 640 px each cell gets its
//    column's heading as data-label, which the CSS shows before the value.
// 5. The run page's cluster map: one Tab stop per stage, arrow keys between
//    its cells; the "only failing" toggle and the stage tables a person
//    opened or closed stay so when a live push or a refresh replaces #timeline.
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

  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function themeNow() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return dark && dark.matches ? "dark" : "light";
  }

  // The button says whether the page is dark, whichever way it got dark;
  // "Follow system theme" shows only while a theme is chosen.
  function showTheme() {
    var now = themeNow(), chosen = document.documentElement.getAttribute("data-theme");
    document.querySelectorAll(".theme-form").forEach(function (form) {
      if (form.classList.contains("theme-reset")) {
        form.hidden = chosen !== "light" && chosen !== "dark";
        return;
      }
      var button = form.querySelector("#theme-toggle"), next = form.querySelector("input[name=theme]");
      if (button) button.setAttribute("aria-pressed", now === "dark" ? "true" : "false");
      if (next) next.value = now === "dark" ? "light" : "dark";
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest(".theme-form");
    if (!form || !window.fetch) return;
    event.preventDefault();
    var data = new FormData(form);
    if (data.get("theme") === "auto") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", data.get("theme"));
    showTheme();
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin", headers: {"HX-Request": "true"}});
  });
  if (dark && dark.addEventListener) dark.addEventListener("change", showTheme);

  // Only at a phone's width (the labels show only there): a desktop pays
  // nothing, and a pushed fragment costs only its own new cells.
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 640px)") : null;
  function labelCells() {
    if (!narrow || !narrow.matches) return;
    document.querySelectorAll("main table").forEach(function (table) {
      var heads = table.querySelectorAll(":scope > thead th");
      if (!heads.length) return;
      table.querySelectorAll(":scope > tbody > tr > td:not([data-label])").forEach(function (cell) {
        var head = heads[cell.cellIndex];
        cell.setAttribute("data-label", head ? head.textContent.trim() : "");
      });
    });
  }
  document.addEventListener("htmx:afterSettle", labelCells);
  document.addEventListener("htmx:oobAfterSwap", labelCells);
  if (narrow && narrow.addEventListener) narrow.addEventListener("change", labelCells);

  showTheme();
  labelCells();

  var onlyFailing = null, tables = {};
  document.addEventListener("change", function (event) {
    if (event.target.id === "only-failing") { onlyFailing = event.target.checked; keepTabStops(); }
  });
  document.addEventListener("click", function (event) {
    var summary = event.target.closest("details.cluster-table > summary");
    if (summary && summary.parentNode.id) tables[summary.parentNode.id] = !summary.parentNode.open;
  });
  // The cluster map is one Tab stop per stage (the tag gives its first cell
  // tabindex 0, the others -1); arrow keys, Home and End move between the
  // visible cells, so a keyboard does not walk through 1,000 cells to pass.
  function visibleCells(map) {
    return Array.prototype.filter.call(map.querySelectorAll(".cell"), function (c) { return c.offsetParent !== null; });
  }

  function rove(from, to) {
    if (!to || to === from) return;
    from.tabIndex = -1;
    to.tabIndex = 0;
    to.focus();
  }

  document.addEventListener("keydown", function (event) {
    var cell = event.target.closest && event.target.closest(".cluster-map .cell");
    if (!cell) return;
    var cells = visibleCells(cell.parentNode), i = cells.indexOf(cell), columns = 1;
    while (columns < cells.length && cells[columns].offsetTop === cells[0].offsetTop) columns++;
    var to = { ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + columns, ArrowUp: i - columns,
               Home: 0, End: cells.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    rove(cell, cells[Math.max(0, Math.min(cells.length - 1, to))]);
  });

  // A cell clicked or tapped becomes its map's Tab stop.
  document.addEventListener("focusin", function (event) {
    var cell = event.target.closest && event.target.closest(".cluster-map .cell");
    if (!cell || cell.tabIndex === 0) return;
    cell.parentNode.querySelectorAll('.cell[tabindex="0"]').forEach(function (c) { c.tabIndex = -1; });
    cell.tabIndex = 0;
  });

  // "Only failing" may hide a map's Tab stop: the first visible cell takes it.
  function keepTabStops() {
    document.querySelectorAll(".cluster-map").forEach(function (map) {
      var stop = map.querySelector('.cell[tabindex="0"]');
      if (stop && stop.offsetParent !== null) return;
      var first = visibleCells(map)[0];
      if (!first) return;
      if (stop) stop.tabIndex = -1;
      first.tabIndex = 0;
    });
  }

  // Once per push, not once per swapped fragment: a push of a big run's
  // page swaps several, and keepTabStops reads the layout of its 1,000 cells.
  var restoring = false;
  document.addEventListener("htmx:load", function () {
    if (restoring) return;
    restoring = true;
    requestAnimationFrame(function () {
      restoring = false;
      var box = document.getElementById("only-failing");
      if (box && onlyFailing !== null) box.checked = onlyFailing;
      Object.keys(tables).forEach(function (id) {
        var table = document.getElementById(id);
        if (table) table.open = tables[id];
      });
      keepTabStops();
    });
  });

  tick();
  setInterval(tick, 1000);
})();
