// Live updates (CSP-friendly: no inline code). htmx's ws extension opens the
// socket of [ws-connect] and swaps each pushed partial out of band by its id;
// this file keeps the page honest about it:
// 1. The status line says "Live" while the socket is open, and "Refreshing
//    every N s" while it is down (the extension reconnects by itself).
// 2. While live, the partials' htmx polling pauses, except for one resync a
//    minute that repairs any push that was dropped; when the socket is down
//    polling takes over at once.
// 3. A push older than what the page shows (two engine workers finishing out
//    of order) is ignored: partials carry data-version.
// 4. A notice the person just got ("… approved.") survives a push for a while,
//    and an action's response lands on the page even if a push replaced its
//    target meanwhile.
// 5. The nav's count of gates waiting for a person ("Approvals (n)", pushed
//    to every page) is repeated in the tab title as "(n) ".
// 6. A run page's push may carry only what changed (rollouts/fragments.py):
//    it starts with <!--live-delta base=V0 version=V1--> and applies only to
//    a #timeline showing V0. A page at another version ignores a delta it
//    is already at or past, and otherwise, having missed a push, fetches its
//    whole timeline (one fetch at a time; deltas arriving meanwhile are left
//    to it), keeping the notice the person just got.
//    A changed map cell keeps its element, so the focus and the map's one
//    Tab stop stay: only its class and name change.
// 7. A big stage's table loads when someone opens it (?table=N), and pushes
//    carry that stage's map cells, not its rows: an opened table is fetched
//    again after a push changed one of its stage's cells (one fetch at a
//    time per table; changes meanwhile make one more fetch after it).
(function () {
  "use strict";
  var RESYNC_MS = 60000, NOTICE_MS = 15000;
  var freshAt = Date.now();

  function sockets() { return document.querySelectorAll("[ws-connect]"); }

  function isLive() {
    var all = sockets();
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute("data-live-state") === "open") return true;
    return false;
  }

  function say(box, state) {
    box.setAttribute("data-live-state", state);
    box.classList.toggle("is-live", state === "open");
    var text = box.querySelector("[data-live-text]");
    if (!text) return;
    var poll = parseInt(box.getAttribute("data-live-poll"), 10) || 0;
    var fallback = poll > 0 ? "Refreshing every " + poll + " s" : "Not refreshing";
    text.textContent = state === "open" ? "Live: changes appear as they happen."
      : fallback + ": the live connection is down; reconnecting…";
  }

  document.addEventListener("htmx:wsOpen", function (event) { say(event.target, "open"); });
  document.addEventListener("htmx:wsClose", function (event) { say(event.target, "closed"); });
  document.addEventListener("htmx:wsError", function (event) { say(event.target, "closed"); });
  document.addEventListener("htmx:wsAfterMessage", function () { freshAt = Date.now(); });

  function polls(elt) { return /^\s*every\s/.test(elt.getAttribute("hx-trigger") || ""); }

  // An automatic refresh is not a person's activity: it must not keep an idle
  // session alive (fleetui.middleware.session_activity).
  document.addEventListener("htmx:configRequest", function (event) {
    if (polls(event.detail.elt)) event.detail.headers["X-Fleet-Poll"] = "true";
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (polls(event.detail.elt) && isLive() && Date.now() - freshAt < RESYNC_MS && !refreshing) event.preventDefault();
  });

  var DELTA = /^<!--live-delta base=(\d+) version=(\d+)-->/;
  var refreshing = false, applying = null;

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var found = DELTA.exec(event.detail.message || "");
    if (!found) return;
    var timeline = document.getElementById("timeline");
    var current = timeline ? Number(timeline.getAttribute("data-version")) : NaN;
    if (timeline && !refreshing && current === Number(found[1])) {
      applying = found[2];
      return;
    }
    event.preventDefault();
    // Already at (or past) its version: the page was rendered whole since
    // (an action's response, a reconnect); nothing to fetch.
    if (timeline && !refreshing && current < Number(found[2])) refresh(timeline);
  });

  document.addEventListener("htmx:wsAfterMessage", function () {
    var timeline = document.getElementById("timeline");
    if (applying !== null && timeline) timeline.setAttribute("data-version", applying);
    applying = null;
  });

  function refresh(timeline) {
    var url = timeline.getAttribute("data-refresh-url");
    if (!url) return;
    refreshing = true;
    htmx.ajax("GET", url, {source: timeline, target: "#timeline", swap: "outerHTML",
                           headers: {"X-Fleet-Poll": "true"}})
      .then(function () {
        var fresh = document.getElementById("timeline");
        if (fresh && fresh !== timeline) keepNotices(timeline, fresh);
        stampNotices();
      })
      .finally(function () { refreshing = false; });
  }

  // An action's response (Approve, Stop) targets #timeline; a push may have
  // replaced that element while the request was in flight, and htmx would
  // swap into the detached one (its htmx:beforeSwap fires there and does not
  // bubble). Swap into the element on the page, and never over a newer state:
  // then only add the response's notice.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var target = event.detail.target;
    if (!target || !target.id || document.body.contains(target)) return;
    var current = document.getElementById(target.id);
    if (!current) return;
    event.detail.target = current;
    target.addEventListener("htmx:beforeSwap", function (swap) {
      var incoming = new DOMParser().parseFromString(swap.detail.serverResponse, "text/html").body.firstElementChild;
      swap.detail.target = current;
      if (incoming && older(incoming, current)) {
        swap.detail.shouldSwap = false;
        incoming.querySelectorAll(".notice").forEach(function (notice) { place(notice, current); });
        stampNotices();
      }
    }, {once: true});
  });

  function older(incoming, current) {
    return incoming.hasAttribute("data-version") && current.hasAttribute("data-version") &&
      Number(incoming.getAttribute("data-version")) < Number(current.getAttribute("data-version"));
  }

  // Put `notice` into `into` after the element that precedes it where it came from.
  function place(notice, into) {
    var before = notice.previousElementSibling;
    var anchor = before && before.id && into.querySelector("#" + CSS.escape(before.id));
    if (anchor) anchor.after(notice.cloneNode(true));
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (polls(event.detail.elt)) freshAt = Date.now();
    stampNotices();
  });

  function stampNotices() {
    document.querySelectorAll(".notice").forEach(function (notice) {
      if (!notice.hasAttribute("data-shown-at")) notice.setAttribute("data-shown-at", String(Date.now()));
    });
  }

  function keepNotices(current, incoming) {
    if (incoming.querySelector(".notice")) return;
    current.querySelectorAll(".notice[data-shown-at]").forEach(function (notice) {
      if (Date.now() - Number(notice.getAttribute("data-shown-at")) < NOTICE_MS) place(notice, incoming);
    });
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var current = event.detail.target, incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    if (!current || !incoming) return;
    if (older(incoming, current)) {
      event.preventDefault();
      return;
    }
    if (current.classList.contains("cell") && incoming.classList.contains("cell")) {
      event.preventDefault();
      current.className = incoming.className;
      current.setAttribute("aria-label", incoming.getAttribute("aria-label"));
      var stage = /^cell-(\d+)-/.exec(current.id);
      if (stage) changedStages[stage[1]] = true;
      return;
    }
    keepNotices(current, incoming);
  });

  var changedStages = {}, reloading = {};

  document.addEventListener("htmx:wsAfterMessage", function () {
    Object.keys(changedStages).forEach(function (n) {
      var table = document.getElementById("table-" + n);
      if (table && table.open && table.hasAttribute("hx-get") && table.querySelector("table.clusters")) reload(table);
    });
    changedStages = {};
  });

  function reload(table) {
    var id = table.id;
    if (reloading[id]) {
      reloading[id] = "again";
      return;
    }
    reloading[id] = true;
    htmx.ajax("GET", table.getAttribute("hx-get"), {source: table, target: table.querySelector(".scroll"),
                                                     swap: "innerHTML", headers: {"X-Fleet-Poll": "true"}})
      .finally(function () {
        var again = reloading[id] === "again", current = document.getElementById(id);
        delete reloading[id];
        if (again && current && current.open && current.querySelector("table.clusters")) reload(current);
      });
  }

  function titleCount() {
    var badge = document.getElementById("approvals-count");
    if (!badge) return;
    var n = parseInt(badge.getAttribute("data-count"), 10) || 0;
    var title = document.title.replace(/^\(\d+\) /, "");
    document.title = n > 0 ? "(" + n + ") " + title : title;
  }
  document.addEventListener("htmx:oobAfterSwap", titleCount);
  document.addEventListener("htmx:wsAfterMessage", titleCount);
})();
