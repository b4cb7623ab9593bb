// The ops dashboard: draw the freshness chart, then poll /ops/figures and redraw.
// Every value from the server is set with textContent or as an attribute, never as HTML.
(function () {
  "use strict";
  const box = document.getElementById("ops");
  if (!box) return;
  const url = box.dataset.figuresUrl + "?hours=" + encodeURIComponent(box.dataset.hours);
  const refreshMs = 1000 * (parseInt(box.dataset.refreshS, 10) || 5);
  const byId = function (id) { return document.getElementById(id); };

  // "2026-12-02T00:41:52.658Z" -> "2026-12-02 00:41:52" (UTC, as the server renders it)
  function when(iso) { return iso ? String(iso).slice(0, 19).replace("T", " ") : "–"; }
  function seconds(value) { return value === null || value === undefined ? "–" : Number(value).toFixed(2) + " s"; }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function link(text, href) {
    const a = el("a", text);
    if (href) a.setAttribute("href", href);
    return a;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    cells.forEach(function (cell) {
      if (cell instanceof Node) { const td = el("td"); td.appendChild(cell); tr.appendChild(td); }
      else if (cell && typeof cell === "object") {
        const td = el("td", cell.text, cell.cls);
        if (cell.node) td.appendChild(cell.node);
        tr.appendChild(td);
      } else tr.appendChild(el("td", cell));
    });
    return tr;
  }

  function emptyRow(columns, text) {
    const td = el("td", text, "empty");
    td.colSpan = columns;
    const tr = document.createElement("tr");
    tr.appendChild(td);
    return tr;
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [emptyRow(columns, emptyText)]);
  }

  function drawChart(freshness) {
    const samples = freshness.samples || [];
    // The window, or from the oldest sample when the history is shorter (a fresh install).
    const to = Date.now();
    let from = to - freshness.hours * 3600 * 1000;
    if (samples.length) from = Math.max(from, Math.min(Date.parse(samples[0].taken_at), to - 60000));
    byId("ops-chart-from").textContent = when(new Date(from).toISOString()).slice(5, 16);
    byId("ops-chart-to").textContent = when(new Date(to).toISOString()).slice(5, 16) + " UTC";
    byId("ops-chart-empty").style.display = samples.length ? "none" : "";
    let top = 1;
    samples.forEach(function (s) {
      top = Math.max(top, s.freshness_lag_s || 0, s.last_flush_lag_s || 0);
    });
    top = Math.ceil(top);
    byId("ops-chart-max").textContent = top + " s";
    function points(key) {
      return samples.filter(function (s) { return s[key] !== null && s[key] !== undefined; })
        .map(function (s) {
          const t = Date.parse(s.taken_at);
          const x = 50 + 660 * Math.max(0, Math.min(1, (t - from) / (to - from)));
          const y = 190 - 180 * (s[key] / top);
          return x.toFixed(1) + "," + y.toFixed(1);
        }).join(" ");
    }
    byId("ops-chart-lag").setAttribute("points", points("freshness_lag_s"));
    byId("ops-chart-flush").setAttribute("points", points("last_flush_lag_s"));
  }

  function drawIndex(index) {
    const error = byId("ops-index-error");
    error.hidden = index.available;
    error.querySelector("span").textContent = index.error || "";
    byId("ops-index").querySelectorAll("dd[data-key]").forEach(function (dd) {
      const value = index[dd.dataset.key];
      if (dd.dataset.format === "time") dd.textContent = when(value);
      else if (dd.dataset.unit === "s") dd.textContent = seconds(value);
      else if (dd.dataset.key === "generation") dd.textContent = value || "none yet";
      else dd.textContent = value === null || value === undefined || value === "" ? "–" : String(value);
    });
  }

  function drawQueues(broker) {
    byId("ops-broker-url").textContent = broker.url;
    const state = byId("ops-broker-state");
    state.textContent = broker.available ? "available" : "unavailable: " + broker.error;
    state.className = broker.available ? "ops-ok" : "ops-bad";
    fill(byId("ops-queues"), broker.queues.map(function (q) {
      return row([
        q.name,
        {text: q.depth === null ? "?" : q.depth, cls: "num"},
        {text: q.workers, cls: "num " + (q.workers ? "ops-ok" : "ops-bad")},
      ]);
    }), 3, "No queues.");
  }

  function drawWorkers(workers) {
    fill(byId("ops-workers"), workers.map(function (w) {
      return row([
        w.queue, w.hostname, {text: w.pid, cls: "num"}, when(w.seen_at),
        {text: Math.round(w.age_s), cls: "num"},
        {text: w.alive ? "alive" : "silent", cls: w.alive ? "ops-ok" : "ops-bad"},
      ]);
    }), 6, "No worker has checked in yet.");
  }

  function drawJobs(parts, failedHours) {
    const box = byId("ops-jobs");
    box.replaceChildren.apply(box, parts.map(function (part) {
      const section = el("section", null, "ops-jobs");
      section.dataset.kind = part.kind;
      section.appendChild(el("h3", part.label));
      if (!part.available) { section.appendChild(el("p", "Unavailable: " + part.error, "errors")); return section; }
      const counts = el("p", null, "ops-counts");
      Object.keys(part.counts).forEach(function (status) {
        const span = el("span", status + " ");
        span.appendChild(el("strong", part.counts[status]));
        counts.appendChild(span);
      });
      section.appendChild(counts);
      section.appendChild(table(
        ["job", "status", "what", "progress", "created (UTC)", "last write (UTC)"], "ops-table",
        part.running.map(function (job) {
          let bar = null;
          if (job.progress !== null && job.progress !== undefined) {
            bar = document.createElement("progress"); bar.max = 1; bar.value = job.progress;
          }
          return row([link(job.id.slice(0, 8), job.admin_url), job.status,
            {text: job.title, cls: "ops-title"}, {node: bar}, when(job.created_at), when(job.updated_at)]);
        }), "None running or queued."));
      section.appendChild(table(
        ["failed job", "what", "failed (UTC)", "error"], "ops-table ops-failed",
        part.failed.map(function (job) {
          return row([link(job.id.slice(0, 8), job.admin_url), {text: job.title, cls: "ops-title"},
            when(job.updated_at), {node: el("pre", job.error || "(no error text)", "ops-error")}]);
        }), "No failures in the last " + failedHours + " h."));
      return section;
    }));
  }

  function table(headings, cls, rows, emptyText) {
    const t = el("table", null, cls);
    const head = document.createElement("tr");
    headings.forEach(function (h) { head.appendChild(el("th", h)); });
    t.appendChild(el("thead")).appendChild(head);
    fill(t.appendChild(el("tbody")), rows, headings.length, emptyText);
    return t;
  }

  function draw(figures) {
    byId("ops-taken-at").textContent = when(figures.taken_at);
    drawIndex(figures.index);
    drawChart(figures.freshness);
    drawQueues(figures.broker);
    drawWorkers(figures.workers);
    drawJobs(figures.jobs, figures.failed_jobs_hours);
  }

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (figures) {
        draw(figures);
        byId("ops-refresh-state").textContent = "";
      })
      .catch(function (error) {
        byId("ops-refresh-state").textContent = "(refresh failed: " + error.message + ", retrying)";
      })
      .finally(function () { setTimeout(poll, refreshMs); });
  }

  drawChart(JSON.parse(byId("ops-freshness").textContent));
  setTimeout(poll, refreshMs);
})();
