// docbot embed page: asks api/ask/stream and shows the answer with its citations.
// Everything from the server or the user is put on the page as text (textContent, text nodes), never as HTML.
// Options come in the address fragment, which browsers never send to a server: #key=...&color=...&collection=...
// (collection: one name, or several comma-separated, searched as one; none: the server's default collection)
"use strict";

(() => {
  const options = new URLSearchParams(location.hash.slice(1));
  const key = options.get("key") || "";
  const color = options.get("color");
  const collection = (options.get("collection") || "").split(",").map((name) => name.trim()).filter(Boolean);
  const MAX_TURNS = 6;
  const MARKERS = /(\[\d+(?:,\s*\d+)*\])/;

  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const reset = document.getElementById("reset");
  const history = []; // [question, answer] pairs, oldest first

  if (color && CSS.supports("color", color)) document.documentElement.style.setProperty("--accent", color);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bubble(kind) {
    const node = el("div", "msg " + kind);
    log.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  function parseEvent(frame) {
    let name = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    return { name, data: data.join("\n") };
  }

  async function failureOf(response) {
    if (response.status === 401) {
      return "This page needs a docbot API key: add #key=<key> to the embed address (or data-key to the widget).";
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After") || "a few";
      return `Too many questions at once; try again in ${wait} seconds.`;
    }
    let detail = "";
    try {
      detail = (await response.json()).detail;
    } catch {
      // not JSON: fall through to the status line
    }
    return typeof detail === "string" && detail ? detail : `The request failed (HTTP ${response.status}).`;
  }

  // Streams the answer: onText(piece) for each piece; resolves with the final structured answer.
  async function streamAnswer(question, onText) {
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch("api/ask/stream", {
      method: "POST",
      headers,
      body: JSON.stringify({
        question,
        history: history.slice(-MAX_TURNS),
        ...(collection.length ? { collection } : {}),
      }),
    });
    if (!response.ok) throw new Error(await failureOf(response));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r/g, "");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (event.name === "text") onText(JSON.parse(event.data).text);
        else if (event.name === "answer") return JSON.parse(event.data);
        else if (event.name === "error") throw new Error(JSON.parse(event.data).detail);
      }
    }
    throw new Error("The answer stopped before it was complete.");
  }

  function where(citation) {
    return ` — ${citation.source}` + (citation.page ? `, page ${citation.page}` : "");
  }

  // The whole passage with the supporting sentence marked.
  function passageText(citation) {
    const node = el("p", "passage-text");
    const text = citation.passage;
    const lo = citation.quote_start - citation.passage_start;
    const hi = citation.quote_end - citation.passage_start;
    if (lo >= 0 && hi <= text.length && lo < hi) {
      node.append(text.slice(0, lo), el("mark", null, text.slice(lo, hi)), text.slice(hi));
    } else {
      node.textContent = text;
    }
    return node;
  }

  function sourceCard(citation) {
    const card = el("details", "source");
    const summary = el("summary");
    summary.append(el("span", "num", `[${citation.number}] `), el("span", "title", citation.title), where(citation));
    const passage = el("details", "passage");
    passage.append(el("summary", null, "Whole passage"), passageText(citation));
    card.append(summary, el("blockquote", "quote", citation.quote), passage, viewButton(citation));
    return card;
  }

  // The evidence viewer (/view/...) in a panel over the chat: fetched with the key (a new tab could not send it),
  // parsed inertly (DOMParser runs no script; the viewer's page has none anyway) and its parts moved in.
  function viewAddress(citation) {
    return new URL(citation.view_url.replace(/^\//, ""), location.href);
  }

  async function fetchWithKey(url) {
    const headers = key ? { Authorization: "Bearer " + key } : {};
    const response = await fetch(url, { headers });
    if (!response.ok && response.status !== 404 && response.status !== 400) throw new Error(await failureOf(response));
    return response;
  }

  // Pictures (a PDF page) are fetched with the key too; their addresses are relative to the viewer's.
  async function showImages(panel, base) {
    for (const img of panel.querySelectorAll("img[data-src]")) {
      const response = await fetchWithKey(new URL(img.dataset.src, base));
      img.src = URL.createObjectURL(await response.blob());
    }
  }

  async function openView(address, button) {
    button.disabled = true;
    const panel = el("section", "viewer");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Source in its document");
    const close = el("button", "viewer-close", "Close");
    close.type = "button";
    close.addEventListener("click", () => panel.remove());
    const body = el("div", "viewer-body");
    panel.append(close, body);
    document.querySelector("section.viewer")?.remove();
    document.body.append(panel);
    close.focus();
    try {
      const response = await fetchWithKey(address);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const img of page.querySelectorAll("img[src]")) {
        img.dataset.src = img.getAttribute("src"); // a parsed document loads nothing; this one would
        img.removeAttribute("src");
      }
      for (const part of page.querySelectorAll("header, main")) body.append(document.importNode(part, true));
      for (const link of body.querySelectorAll("a[href]")) {
        link.addEventListener("click", (event) => {
          event.preventDefault();
          openView(new URL(link.getAttribute("href"), address), link);
        });
      }
      await showImages(body, address);
      body.querySelector("#cited")?.scrollIntoView({ block: "center" });
    } catch (error) {
      body.replaceChildren(el("p", "viewer-error", error.message || String(error)));
    } finally {
      button.disabled = false;
    }
  }

  function viewButton(citation) {
    const button = el("button", "open-view", "Open in document");
    button.type = "button";
    button.addEventListener("click", () => openView(viewAddress(citation), button));
    return button;
  }

  // [n] opens source n's card and shows the cited document in the viewer panel (closing it returns to the card).
  function citeButton(citation, card) {
    const button = el("button", "cite", `[${citation.number}]`);
    button.type = "button";
    button.setAttribute("aria-label", `Source ${citation.number}: open it in its document`);
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      card.open = true;
      card.scrollIntoView({ block: "nearest" });
      openView(viewAddress(citation), button);
    });
    card.addEventListener("toggle", () => button.setAttribute("aria-expanded", String(card.open)));
    return button;
  }

  function showAnswer(reply, answer) {
    reply.replaceChildren();
    reply.classList.remove("pending");
    reply.classList.toggle("refused", answer.refused);
    const cited = new Map(answer.citations.map((c) => [c.number, c]));
    const cards = new Map(answer.citations.map((c) => [c.number, sourceCard(c)]));
    const text = el("p", "text");
    for (const part of answer.answer.split(MARKERS)) {
      const numbers = MARKERS.test(part) ? part.slice(1, -1).split(",").map(Number) : [];
      if (!numbers.length || !numbers.every((n) => cards.has(n))) {
        text.append(part);
        continue;
      }
      for (const n of numbers) text.append(citeButton(cited.get(n), cards.get(n)));
    }
    reply.append(text);
    if (answer.notice) reply.append(el("p", "notice", answer.notice));
    if (cards.size) {
      const sources = el("div", "sources");
      sources.append(...cards.values());
      reply.append(sources);
    }
  }

  async function ask(question) {
    bubble("user").textContent = question;
    const reply = bubble("bot pending");
    const text = el("p", "text");
    reply.append(text);
    try {
      const answer = await streamAnswer(question, (piece) => {
        text.textContent += piece;
        reply.scrollIntoView({ block: "end" });
      });
      showAnswer(reply, answer);
      history.push([question, answer.answer]);
    } catch (error) {
      reply.className = "msg error";
      reply.replaceChildren(el("p", "text", error.message || String(error)));
    }
    reply.scrollIntoView({ block: "end" });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    send.disabled = true;
    try {
      await ask(question);
    } finally {
      send.disabled = false;
      input.focus();
    }
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  reset.addEventListener("click", () => {
    history.length = 0;
    for (const node of log.querySelectorAll(".msg")) node.remove();
    input.focus();
  });
})();
