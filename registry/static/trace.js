/* certledger regulator trace page: client-side filters over the server-rendered graph and table.
   No dependencies (the zh / en switch is static/lang.js, shared with the verify and holder pages);
   the page works without it (filters then come from the server form only). */
(function () {
  "use strict";
  var root = document.getElementById("trace");
  if (!root) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.flow-row"));
  var edges = Array.prototype.slice.call(document.querySelectorAll("svg .edge"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-filter-status]"));
  var violationsOnly = document.getElementById("violations-only");
  var search = document.getElementById("search");
  var count = document.getElementById("shown-count");

  function apply() {
    var statuses = {};
    boxes.forEach(function (b) { if (b.checked) statuses[b.value] = true; });
    var onlyBad = violationsOnly && violationsOnly.checked;
    var text = search ? search.value.trim().toLowerCase() : "";
    var visible = {};
    var shown = 0;
    rows.forEach(function (tr) {
      var ok = !!statuses[tr.getAttribute("data-status")] &&
        (!onlyBad || tr.getAttribute("data-violation") === "1") &&
        (!text || tr.textContent.toLowerCase().indexOf(text) !== -1);
      tr.hidden = !ok;
      visible[tr.getAttribute("data-flow-id")] = ok;
      if (ok) shown += 1;
    });
    edges.forEach(function (a) {
      a.style.display = visible[a.getAttribute("data-flow-id")] ? "" : "none";
    });
    if (count) {
      count.textContent = "";
      var zh = document.createElement("span"), en = document.createElement("span");
      zh.lang = "zh"; zh.textContent = "显示 " + shown + " / " + rows.length + " 条流动";
      en.lang = "en"; en.textContent = shown + " of " + rows.length + " flows shown";
      count.appendChild(zh); count.appendChild(document.createTextNode(" ")); count.appendChild(en);
    }
    root.setAttribute("data-shown", String(shown));
  }

  function highlight(id, on) {
    rows.forEach(function (tr) { if (tr.getAttribute("data-flow-id") === id) tr.classList.toggle("hl", on); });
    edges.forEach(function (a) { if (a.getAttribute("data-flow-id") === id) a.classList.toggle("hl", on); });
  }

  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  if (violationsOnly) violationsOnly.addEventListener("change", apply);
  if (search) search.addEventListener("input", apply);
  rows.concat(edges).forEach(function (el) {
    var id = el.getAttribute("data-flow-id");
    el.addEventListener("mouseenter", function () { highlight(id, true); });
    el.addEventListener("mouseleave", function () { highlight(id, false); });
  });
  document.getElementById("client-filters").hidden = false;
  apply();
})();
