(function () {
  "use strict";
  var search = document.getElementById("search");
  var chapter = document.getElementById("chapter-filter");
  var status = document.getElementById("status-filter");
  var count = document.getElementById("shown-count");
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card"));
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.chapter"));
  var KEY = "udl-gallery-filters";
  function matches(card, words, ch, st) {
    if (ch !== "all" && card.dataset.chapter !== ch) { return false; }
    var s = card.dataset.status;
    if (st === "queued" && s !== "queued" && s !== "running") { return false; }
    if (st !== "all" && st !== "queued" && s !== st) { return false; }
    var text = card.dataset.search || "";
    return words.every(function (w) { return text.indexOf(w) >= 0; });
  }
  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
    var shown = 0;
    cards.forEach(function (card) {
      var ok = matches(card, words, chapter.value, status.value);
      card.hidden = !ok;
      var entry = document.getElementById("toc-" + card.dataset.id);
      if (entry) { entry.hidden = !ok; }
      if (ok) { shown += 1; }
    });
    sections.forEach(function (section) {
      section.hidden = !section.querySelector("article.card:not([hidden])");
      var entry = document.getElementById("toc-ch-" + section.dataset.chapter);
      if (entry) { entry.hidden = section.hidden; }
    });
    count.textContent = String(shown);
    try {
      sessionStorage.setItem(KEY, JSON.stringify({q: search.value, ch: chapter.value, st: status.value}));
    } catch (e) { /* storage may be off for file:// pages */ }
  }
  try {
    var saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (saved) {  // the reader's search and filters survive the reloads during a run and the last one after it
      var has = function (select, value) {
        return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
      };
      search.value = saved.q || "";
      if (has(chapter, saved.ch)) { chapter.value = saved.ch; }
      if (has(status, saved.st)) { status.value = saved.st; }
    }
  } catch (e) { /* nothing saved */ }
  search.addEventListener("input", apply);
  chapter.addEventListener("change", apply);
  status.addEventListener("change", apply);
  apply();
  if (document.getElementById("progress")) {
    // the run is going: read the page again in a few seconds, unless the reader is typing
    setInterval(function () {
      if (document.activeElement !== search) { location.reload(); }
    }, 5000);
  }
}());
