// Optional enhancement: the pages work without it. Refreshes counts and rates every 2 s from
// the JSON feed named by <body data-feed>, and asks before destructive actions.
(function () {
  "use strict";
  var feed = document.body.getAttribute("data-feed");

  function show(queue) {
    document.querySelectorAll("[data-field]").forEach(function (el) {
      if (el.getAttribute("data-queue") !== queue.name) return;
      var field = el.getAttribute("data-field");
      var text;
      if (field === "paused") text = queue.paused ? "paused" : "running";
      else if (field in queue.counts) text = String(queue.counts[field]);
      else if (field in queue) text = rate(queue[field]);
      else return;
      if (el.textContent !== text) el.textContent = text;
    });
  }

  function rate(value) {
    if (!value) return "0";
    return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
  }

  function refresh() {
    fetch(feed, { headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) body.queues.forEach(show); })
      .catch(function () {});
  }

  if (feed && document.querySelector("[data-field]")) setInterval(refresh, 2000);

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
