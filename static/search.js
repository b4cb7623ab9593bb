// The search page's answer: start it, follow its server-sent events, show [n] as links to
// the sources listed under it (author, time, the supporting sentence highlighted).
// Everything the model writes and every post's text is inserted as text nodes, never HTML.
(function () {
  "use strict";
  const box = document.getElementById("answer");
  if (!box || !window.EventSource || !window.fetch) return;
  const textEl = box.querySelector(".answer-text");
  const sourcesEl = box.querySelector(".answer-sources");
  const feedbackEl = box.querySelector(".answer-feedback");
  const noteEl = box.querySelector(".answer-note");
  const csrf = box.querySelector("input[name=csrfmiddlewaretoken]").value;
  let text = "";
  let sources = {};

  function render() {
    textEl.replaceChildren();
    for (const part of text.split(/(\[\d+\])/)) {
      const cite = /^\[(\d+)\]$/.exec(part);
      if (cite && sources[cite[1]]) {
        const link = document.createElement("a");
        link.href = "#answer-source-" + cite[1];
        link.className = "cite";
        link.textContent = part;
        link.title = "@" + sources[cite[1]].author;
        textEl.append(link);
      } else {
        textEl.append(document.createTextNode(part));
      }
    }
  }

  // The post's text with each supporting sentence in a <mark>, all as text nodes.
  function highlight(into, text, sentences) {
    let at = 0;
    const spans = [];
    for (const sentence of sentences) {
      const start = text.indexOf(sentence);
      if (start >= 0) spans.push([start, start + sentence.length]);
    }
    spans.sort(function (a, b) { return a[0] - b[0]; });
    for (const [start, end] of spans) {
      if (start < at) continue;
      into.append(document.createTextNode(text.slice(at, start)));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(start, end);
      into.append(mark);
      at = end;
    }
    into.append(document.createTextNode(text.slice(at)));
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
    const notes = [];
    if (answer.cut_short) notes.push("The time limit stopped the model; the answer was completed from the posts.");
    else if (answer.quoted) notes.push("Quoted from the posts.");
    noteEl.textContent = notes.join(" ");
    noteEl.hidden = !notes.length;
    sourcesEl.replaceChildren();
    for (const cited of answer.citations) {
      const post = sources[cited.n];
      if (!post) continue;
      const item = document.createElement("li");
      item.value = cited.n;
      item.id = "answer-source-" + cited.n;
      const who = document.createElement("a");
      who.href = post.url;
      who.textContent = "@" + post.author;
      const when = document.createElement("time");
      when.dateTime = post.created_at;
      when.textContent = new Date(post.created_at).toLocaleString(undefined, {
        day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
      });
      const quote = document.createElement("blockquote");
      highlight(quote, post.text, cited.evidence || []);
      item.append(who, document.createTextNode(" · "), when, quote);
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
