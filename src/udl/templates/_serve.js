(function () {
  "use strict";
  var form = document.getElementById("params-form");
  var figure = form.dataset.figure;
  var button = document.getElementById("recompute");
  var cancel = document.getElementById("cancel");
  var bar = document.getElementById("job-progress");
  var message = document.getElementById("job-message");
  var error = document.getElementById("form-error");
  var results = document.getElementById("results");
  var job = null;
  var timer = null;
  function values() {
    var data = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      data.append(el.name, el.type === "checkbox" ? (el.checked ? "true" : "false") : el.value);
    });
    return data;
  }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }
  function show(state, sent) {
    var section = document.createElement("section");
    section.className = "result";
    var title = document.createElement("h3");
    var changed = [];
    sent.forEach(function (v, k) { changed.push(k + "=" + v); });
    title.textContent = (state.state === "done" ? "Recomputed" : "Failed") + " with " + changed.join(", ");
    section.appendChild(title);
    if (state.image) {
      var img = document.createElement("img");
      img.src = state.image;
      img.alt = "Figure " + figure + " recomputed with " + changed.join(", ");
      section.appendChild(img);
    }
    var table = document.createElement("table");
    table.className = "checks";
    var checks = (state.record && state.record.checks) || [];
    checks.forEach(function (c) {
      var row = document.createElement("tr");
      var untested = c.tested === false;
      row.className = untested ? "untested" : (c.ok ? "pass" : "fail");
      cell(row, c.claim);
      cell(row, typeof c.measured === "string" ? c.measured : JSON.stringify(c.measured));
      cell(row, typeof c.expected === "string" ? c.expected : JSON.stringify(c.expected));
      cell(row, untested ? "not tested" : (c.ok ? "pass" : "fail"), untested ? "untested" : (c.ok ? "pass" : "fail"));
      table.appendChild(row);
    });
    section.appendChild(table);
    if (state.state !== "done" && state.message) {
      var p = document.createElement("p");
      p.className = "fail";
      p.textContent = state.message;
      section.appendChild(p);
    }
    results.insertBefore(section, results.firstChild);
  }
  function finish() {
    job = null;
    button.disabled = false;
    cancel.disabled = true;
    if (timer) { clearTimeout(timer); timer = null; }
  }
  function poll(sent) {
    if (!job) { return; }
    fetch("/api/jobs/" + encodeURIComponent(job)).then(function (r) { return r.json(); }).then(function (state) {
      bar.value = typeof state.progress === "number" ? state.progress : 0;
      message.textContent = state.message || state.state;
      if (state.state === "done" || state.state === "failed") {
        show(state, sent);
        finish();
      } else if (state.state === "cancelled") {
        message.textContent = "cancelled";
        finish();
      } else {
        timer = setTimeout(function () { poll(sent); }, 300);
      }
    }).catch(function (e) { error.textContent = String(e); finish(); });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (job) { return; }
    error.textContent = "";
    var sent = values();
    button.disabled = true;
    fetch("/api/figures/" + encodeURIComponent(figure) + "/jobs", {method: "POST", body: sent}).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (answer) {
      if (!answer.ok) {
        error.textContent = answer.body.error || "the values were refused";
        button.disabled = false;
        return;
      }
      job = answer.body.job;
      cancel.disabled = false;
      bar.value = 0;
      message.textContent = "queued";
      poll(sent);
    }).catch(function (e) { error.textContent = String(e); button.disabled = false; });
  });
  cancel.addEventListener("click", function () {
    if (!job) { return; }
    fetch("/api/jobs/" + encodeURIComponent(job) + "/cancel", {method: "POST"});
  });
}());
