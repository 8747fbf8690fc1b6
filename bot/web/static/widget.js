// docbot widget: one tag adds a floating chat button that opens the docbot embed page in a panel.
//   <script src="https://docbot.example/widget.js" data-title="Ask the docs" data-color="#0b5cad"
//           data-key="(a dedicated, low-privilege key; only when docbot has API keys)"
//           data-collection="hr" async></script>   (one collection, or several comma-separated; default: the server's)
// The title is shown as text, the color is used only if it is a valid CSS color, the key travels in the
// address fragment of the iframe (never sent to a server, never in a log).
"use strict";

(() => {
  const script = document.currentScript;
  if (!script || document.getElementById("docbot-widget")) return;

  const title = script.dataset.title || "Ask the docs";
  const wanted = script.dataset.color;
  const color = wanted && CSS.supports("color", wanted) ? wanted : "#2563eb";
  const fragment = new URLSearchParams({ color });
  if (script.dataset.key) fragment.set("key", script.dataset.key);
  if (script.dataset.collection) fragment.set("collection", script.dataset.collection);
  const address = new URL("embed", script.src);
  address.hash = fragment.toString();

  const STYLE = `
    :host { all: initial; }
    .launcher {
      position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
      width: 56px; height: 56px; border-radius: 50%; border: 0; cursor: pointer;
      background: var(--accent); color: #fff; box-shadow: 0 4px 14px rgba(0, 0, 0, .25);
      display: flex; align-items: center; justify-content: center;
    }
    .launcher:focus-visible { outline: 3px solid #000; outline-offset: 2px; }
    .launcher svg { width: 28px; height: 28px; fill: currentColor; }
    .panel {
      position: fixed; right: 20px; bottom: 88px; z-index: 2147483000;
      width: min(380px, calc(100vw - 24px)); height: min(600px, calc(100vh - 112px));
      display: flex; flex-direction: column; background: #fff; border-radius: 12px; overflow: hidden;
      box-shadow: 0 8px 30px rgba(0, 0, 0, .3); font: 14px/1.4 system-ui, sans-serif;
    }
    .panel[hidden] { display: none; }
    header {
      display: flex; align-items: center; justify-content: space-between; gap: 8px;
      padding: 8px 12px; background: var(--accent); color: #fff;
    }
    header span { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    header button { font: inherit; font-size: 18px; line-height: 1; border: 0; background: none; color: #fff; cursor: pointer; }
    iframe { flex: 1; width: 100%; border: 0; }
    @media (max-width: 480px) { .panel { right: 12px; bottom: 84px; } }
  `;

  function el(tag, props) {
    return Object.assign(document.createElement(tag), props);
  }

  function chatIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z");
    svg.append(path);
    return svg;
  }

  const host = el("div", { id: "docbot-widget" });
  host.style.setProperty("--accent", color);
  const root = host.attachShadow({ mode: "open" });
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(STYLE);
  root.adoptedStyleSheets = [sheet];

  const launcher = el("button", { type: "button", className: "launcher", title });
  launcher.setAttribute("aria-label", title);
  launcher.setAttribute("aria-expanded", "false");
  launcher.append(chatIcon());

  const panel = el("div", { className: "panel", hidden: true });
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  const close = el("button", { type: "button", textContent: "×", title: "Close" });
  close.setAttribute("aria-label", "Close");
  const header = el("header");
  header.append(el("span", { textContent: title }), close);
  panel.append(header);

  let frame = null;

  function toggle(open) {
    if (open && !frame) {
      frame = el("iframe", { src: address.href, title, referrerPolicy: "no-referrer" });
      frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
      panel.append(frame);
    }
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) frame.focus();
  }

  launcher.addEventListener("click", () => toggle(panel.hidden));
  close.addEventListener("click", () => {
    toggle(false);
    launcher.focus();
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) close.click();
  });

  root.append(panel, launcher);
  if (document.body) document.body.append(host);
  else document.addEventListener("DOMContentLoaded", () => document.body.append(host));
})();
