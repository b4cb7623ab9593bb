// The search page's answer: start it, follow its server-sent events, show [n] as links.
// Everything the model writes is inserted as text nodes, never as HTML.
(function () {
  "use strict";
  const box = document.getElementById("answer");
  if (!box || !window.EventSource || !window.fetch) return;
  const textEl = box.querySelector(".answer-text");
  const sourcesEl = box.querySelector(".answer-sources");
  const feedbackEl = box.querySelector(".answer-feedback");
  const csrf = box.querySelector("input[name=csrfmiddlewaretoken]").value;
  let text = "";
  let sources = {};

  function render() {
    textEl.replaceChildren();
    for (const part of text.split(/(\[\d+\])/)) {
      const cite = /^\[(\d+)\]$/.exec(part);
      if (cite && sources[cite[1]]) {
        const link = document.createElement("a");
        link.href = sources[cite[1]].url;
        link.textContent = part;
        link.title = "@" + sources[cite[1]].author;
        textEl.append(link);
      } else {
        textEl.append(document.createTextNode(part));
      }
    }
  }

  function finish(answer, failed) {
    textEl.dataset.state = failed ? "failed" : "done";
    if (failed) {
      textEl.textContent = "The answer could not be written. The posts below are the search results.";
      return;
    }
    sources = {};
    for (const post of answer.retrieved) if (!post.removed) sources[post.n] = post;
    text = answer.text;
    render();
    sourcesEl.replaceChildren();
    for (const cited of answer.citations) {
      const post = sources[cited.n];
      if (!post) continue;
      const item = document.createElement("li");
      item.value = cited.n;
      const link = document.createElement("a");
      link.href = post.url;
      link.textContent = "@" + post.author;
      item.append(link, document.createTextNode(": " + post.text.slice(0, 140)));
      sourcesEl.append(item);
    }
    sourcesEl.hidden = !sourcesEl.children.length;
    feedbackEl.hidden = false;
    feedbackEl.querySelectorAll("button").forEach(function (button) {
      button.addEventListener("click", function () {
        fetch(feedbackUrl, {
          method: "POST",
          headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
          body: JSON.stringify({helpful: button.dataset.helpful}),
        }).then(function () {
          feedbackEl.querySelector(".answer-thanks").hidden = false;
        });
      });
    });
  }

  let feedbackUrl = "";
  const form = new FormData();
  form.append("q", box.dataset.question);
  fetch(box.dataset.createUrl, {method: "POST", headers: {"X-CSRFToken": csrf}, body: form})
    .then(function (response) {
      return response.json().then(function (body) { return {status: response.status, body: body}; });
    })
    .then(function (reply) {
      if (reply.status !== 202) {
        textEl.dataset.state = "failed";
        textEl.textContent = reply.body.detail || (reply.body.q || ["No answer."])[0];
        return;
      }
      feedbackUrl = box.dataset.createUrl + "/" + reply.body.id + "/feedback";
      const events = new EventSource(reply.body.events_url);
      events.addEventListener("token", function (event) {
        if (textEl.dataset.state === "waiting") { text = ""; textEl.dataset.state = "writing"; }
        text += JSON.parse(event.data).text;
        render();
      });
      events.addEventListener("done", function (event) { events.close(); finish(JSON.parse(event.data), false); });
      events.addEventListener("failed", function () { events.close(); finish(null, true); });
    })
    .catch(function () {
      textEl.dataset.state = "failed";
      textEl.textContent = "The answer could not be started.";
    });
})();
