// Clicking an [n] marker shows that answer's sources, highlights source n and opens the cited document inside that
// source's card: the evidence viewer (/view/..., same origin, no script of its own) in a frame, scrolled to the
// highlighted sentence. Event delegation, so it works for messages Gradio renders later. A click with a modifier
// key, or any click without JavaScript, opens the view in a new tab instead (the link's own target). While an
// answer streams its markers only jump to the card. The page's only script.
(() => {
  const show = (id) => {
    const card = document.getElementById(id);
    if (!card || !card.classList.contains("src-card")) return null;
    const group = card.closest(".src-turn");
    document.querySelectorAll(".src-turn.shown").forEach((g) => { if (g !== group) g.classList.remove("shown"); });
    if (group) group.classList.add("shown");
    document.querySelectorAll(".src-card.active").forEach((c) => c.classList.remove("active", "flash"));
    card.classList.add("active");
    void card.offsetWidth;
    card.classList.add("flash");
    return card;
  };

  // Scrolls the frame (never the page around it) so the highlighted sentence sits a third of the way down.
  const reveal = (frame) => {
    const doc = frame.contentDocument;
    const cited = doc && doc.getElementById("cited");
    if (!cited) return;
    const box = cited.getBoundingClientRect();
    const sheet = cited.closest(".view-pdf");
    if (sheet) sheet.scrollLeft += box.left - sheet.getBoundingClientRect().left - sheet.clientWidth / 4;
    const view = frame.contentWindow;
    view.scrollTo(0, Math.max(0, view.scrollY + box.top - view.innerHeight / 3));
  };

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const openViewer = (card, link) => {
    document.querySelectorAll(".docbot-viewer").forEach((v) => v.remove());
    const address = new URL(link.getAttribute("href"), location.href);
    const viewer = el("section", "docbot-viewer");
    const label = `Source ${link.textContent.replace(/[[\]]/g, "")}`;
    viewer.setAttribute("aria-label", `${label} in its document`);
    const bar = el("div", "viewer-bar");
    const status = el("span", "viewer-status", `Opening ${label.toLowerCase()} in its document…`);
    const tab = el("a", "viewer-tab", "new tab ↗");
    tab.href = address.href;
    tab.target = "_blank";
    tab.rel = "noopener";
    const close = el("button", "viewer-close", "Close");
    close.type = "button";
    close.addEventListener("click", () => viewer.remove());
    bar.append(status, tab, close);
    const frame = el("iframe", "viewer-frame");
    frame.title = `${label} in its document`;
    frame.setAttribute("sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    frame.referrerPolicy = "no-referrer";
    frame.addEventListener("load", () => {
      reveal(frame);
      viewer.classList.add("loaded");
      status.textContent = `${label} in its document`;
    });
    address.hash = ""; // the frame is scrolled by reveal(): a #cited fragment would scroll the page around it too
    frame.src = address.href;
    viewer.append(bar, frame);
    const meta = card.querySelector(".src-meta");
    if (meta) meta.after(viewer);
    else card.append(viewer);
  };

  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a.cite") : null;
    if (!link) return;
    const anchor = [...link.classList].find((name) => name.startsWith("to-src-"));
    const href = link.getAttribute("href") || "";
    if (anchor && (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) {
      show(anchor.slice(3));
      return; // the browser opens the view in a new tab
    }
    event.preventDefault();
    event.stopPropagation();
    const card = show(anchor ? anchor.slice(3) : href.replace(/^#/, ""));
    if (!card) return;
    if (anchor) openViewer(card, link);
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.focus({ preventScroll: true });
  }, true);

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.querySelectorAll(".docbot-viewer").forEach((v) => v.remove());
  });
})();
