// A training run's page: poll its progress, move the bar, redraw the loss chart.
// Values from the server are numbers or text set with textContent, never HTML.
(function () {
  "use strict";
  const box = document.getElementById("training");
  if (!box) return;
  const url = box.dataset.progressUrl;
  const byId = function (id) { return document.getElementById(id); };

  function draw(history) {
    if (!history.length) return;
    const losses = history.map(function (p) { return p[1]; });
    const lo = Math.min.apply(null, losses), hi = Math.max.apply(null, losses);
    const last = history[history.length - 1][0] || 1;
    const span = hi - lo || 1;
    byId("loss-line").setAttribute("points", history.map(function (p) {
      const x = 40 + 550 * (p[0] / last), y = 210 - 200 * ((p[1] - lo) / span);
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" "));
    byId("loss-max").textContent = hi.toFixed(2);
    byId("loss-min").textContent = lo.toFixed(2);
  }

  function update(run) {
    byId("training-bar").max = run.steps;
    byId("training-bar").value = run.step;
    byId("training-step").textContent = run.step + "/" + run.steps;
    byId("training-status").textContent = run.status;
    if (run.tokens_per_s) byId("training-speed").textContent = "· " + Math.round(run.tokens_per_s) + " tokens/s";
    draw(run.loss_history);
    if (run.eval_loss != null) {
      byId("training-result").textContent = "Eval loss: base " + run.base_eval_loss.toFixed(3) +
        " → adapter " + run.eval_loss.toFixed(3) + (run.adapter ? " (adapter " + run.adapter + ")" : "");
    }
    if (run.error) { byId("training-error").hidden = false; byId("training-error").textContent = run.error; }
    return run.finished;
  }

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (run) { if (!update(run)) setTimeout(poll, 2000); })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
