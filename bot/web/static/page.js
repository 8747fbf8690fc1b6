// Clicking an [n] marker shows that answer's sources and highlights source n (event delegation, so it works for
// messages Gradio renders later). Without JavaScript the link still jumps to the source. The page's only script.
(() => {
  const show = (id) => {
    const card = document.getElementById(id);
    if (!card || !card.classList.contains("src-card")) return;
    const group = card.closest(".src-turn");
    document.querySelectorAll(".src-turn.shown").forEach((g) => { if (g !== group) g.classList.remove("shown"); });
    if (group) group.classList.add("shown");
    document.querySelectorAll(".src-card.active").forEach((c) => c.classList.remove("active", "flash"));
    card.classList.add("active");
    void card.offsetWidth;
    card.classList.add("flash");
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.focus({ preventScroll: true });
  };
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a.cite") : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    show((link.getAttribute("href") || "").replace(/^#/, ""));
  }, true);
})();
