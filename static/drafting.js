// Follows the draft jobs on a campaign page: polls each running job's progress and
// reloads the page once one finishes (its drafts then appear). Values are set as text.
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("tr.draft-job[data-finished='0']"));
  if (!rows.length) return;
  async function poll() {
    let finished = false;
    for (const row of rows) {
      if (row.dataset.finished === "1") continue;
      try {
        const response = await fetch(row.dataset.progressUrl, { credentials: "same-origin" });
        if (!response.ok) continue;
        const job = await response.json();
        row.querySelector(".job-status").textContent = job.status;
        row.querySelector(".job-bar").value = job.kept;
        row.querySelector(".job-count").textContent =
          job.kept + "/" + job.n + " kept, " + job.generated + " written";
        if (job.finished) {
          row.dataset.finished = "1";
          finished = true;
        }
      } catch (error) {
        /* the next poll tries again */
      }
    }
    if (finished) window.location.reload();
    else window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();
