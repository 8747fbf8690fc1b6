"""Reports of an evaluation run: the Markdown summary, the comparison of two runs, the HTML page.

The HTML page is one self-contained file: inline CSS, plots as base64 PNG data URIs, no script,
nothing fetched. Every piece of text from the question set, the documents or the bot is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.eval.metrics import LATENCY_TOLERANCE, METRICS
from bot.eval.retrievers import retrievers_markdown

if TYPE_CHECKING:
    from bot.eval.compare import Comparison

DASH = "—"
_FAILURES_LISTED = 20


def fmt(value: float | None, metric: str = "") -> str:
    """A metric value for people: latencies in ms with one decimal, scores with three; None as a dash."""
    if value is None:
        return DASH
    return f"{value:.1f}" if metric.endswith(("_p50", "_p95")) else f"{value:.3f}"


def _set_name(results: dict[str, Any]) -> str:
    return Path(results["run"]["questions"]).name


def _run_line(results: dict[str, Any]) -> str:
    run, counts = results["run"], results["counts"]
    corpus = f"{run['docs']} (temporary index)" if run["docs"] else f"index {run['index']}"
    return (
        f"{counts['questions']} questions ({counts['answerable']} answerable, {counts['unanswerable']} unanswerable, "
        f"{counts['follow_ups']} with history) · corpus {corpus}, {run['chunks']} chunks · "
        f"generator {run['generator']} · k {run['k']} · ranked {run['depth']} deep · {run['seconds']} s"
    )


def metric_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, measured over, meaning) for every metric, in the fixed order."""
    return [
        (m.name, fmt(results["metrics"].get(m.name), m.name), str(results["measured"].get(m.name, 0)), m.meaning)
        for m in METRICS
    ]


def _gate_line(gate: dict[str, Any]) -> str:
    mark = "pass" if gate["passed"] else "FAIL"
    return f"- {mark}: `{gate['metric']}` ≥ {gate['threshold']:g} ({gate['reason']})"


def summary_markdown(results: dict[str, Any]) -> str:
    """The summary printed after a run and written to summary.md."""
    title = f"# docbot eval: {_set_name(results)}"
    lines = [title, "", _run_line(results), "", "| metric | value | over | meaning |", "|---|---:|---:|---|"]
    lines += [f"| `{metric}` | {value} | {over} | {meaning} |" for metric, value, over, meaning in metric_rows(results)]
    lines += ["", f"`{DASH}`: nothing to measure (e.g. no unanswerable question); it fails any gate on that metric."]
    if results["gates"]:
        verdict = "passed" if all(g["passed"] for g in results["gates"]) else "FAILED"
        lines += ["", f"## Gates: {verdict}", "", *(_gate_line(g) for g in results["gates"])]
    compared = retrievers_markdown(results.get("retrievers", {}))
    lines += ["", *compared] if compared else []
    failing = [q for q in results["questions"] if q["problems"]]
    lines += ["", f"## Failures: {len(failing) or 'none'} of {len(results['questions'])} questions", ""]
    lines += [f"- `{q['id']}`: {'; '.join(q['problems'])}" for q in failing[:_FAILURES_LISTED]]
    if len(failing) > _FAILURES_LISTED:
        lines.append(f"- … and {len(failing) - _FAILURES_LISTED} more (see report.html)")
    return "\n".join(lines).rstrip() + "\n"


def _signed(value: float | None, metric: str) -> str:
    if value is None:
        return DASH
    text = fmt(abs(value), metric)
    return ("+" if value >= 0 else "-") + text


def compare_markdown(comparison: Comparison) -> str:
    """Metric deltas of two runs side by side, regressions marked."""
    lines = [
        f"# docbot eval compare: A = {comparison.a}, B = {comparison.b}",
        "",
        "| metric | A | B | B − A | |",
        "|---|---:|---:|---:|---|",
    ]
    for d in comparison.deltas:
        mark = "**regression**" if d.regression else ""
        lines.append(
            f"| `{d.metric}` | {fmt(d.a, d.metric)} | {fmt(d.b, d.metric)} | {_signed(d.delta, d.metric)} | {mark} |"
        )
    lines += [
        "",
        f"{len(comparison.regressions)} regression(s): a lower score, "
        f"or a latency up by more than {LATENCY_TOLERANCE:.0%}.",
    ]
    if comparison.newly_failing:
        lines.append(f"Newly failing in B: {', '.join(comparison.newly_failing)}")
    if comparison.fixed:
        lines.append(f"Fixed in B: {', '.join(comparison.fixed)}")
    lines += [f"Note: {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


# --- HTML --------------------------------------------------------------------------------------


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def hit_curve_png(curve: list[float]) -> str | None:
    if not curve:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    ks = list(range(1, len(curve) + 1))
    axes.plot(ks, curve, marker="o", color="#2563eb")
    axes.set(xlabel="k (passages)", ylabel="hit@k", ylim=(0, 1.05), xticks=ks, title="Evidence found in the top k")
    axes.grid(alpha=0.3)
    return _png(figure)


def latency_png(questions: list[dict[str, Any]]) -> str | None:
    parts = {part: [q["timings"].get(f"{part}_ms") for q in questions] for part in ("retrieval", "generation", "total")}
    if not parts["total"] or None in parts["total"]:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    top = max(parts["total"]) or 1.0
    bins = [top * i / 20 for i in range(21)]
    for part, color in (("retrieval", "#16a34a"), ("generation", "#f59e0b"), ("total", "#2563eb")):
        values = [v for v in parts[part] if v is not None]
        axes.hist(values, bins=bins, histtype="step", linewidth=2, color=color, label=part)
    axes.set(xlabel="milliseconds", ylabel="questions", title="Latency per question")
    axes.legend()
    return _png(figure)


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1f2937}
table{border-collapse:collapse;margin:1rem 0}td,th{border-bottom:1px solid #e5e7eb;padding:.25rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}code{background:#f3f4f6;padding:0 .2rem;border-radius:3px}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots img{max-width:100%;border:1px solid #e5e7eb}
.q{border:1px solid #e5e7eb;border-left:6px solid #16a34a;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.q.fail{border-left-color:#dc2626}.badge{font-weight:600;color:#16a34a}.fail .badge{color:#dc2626}
.problems{color:#b91c1c;margin:.3rem 0}.label{color:#6b7280;font-size:.85em;text-transform:uppercase}
.meta{color:#6b7280;font-size:.85em}.rel{color:#15803d;font-weight:600}
blockquote{margin:.3rem 0;padding:.3rem .8rem;background:#f9fafb;border-left:3px solid #d1d5db}
mark{background:#fde68a}.gate-fail{color:#b91c1c;font-weight:600}.gate-pass{color:#15803d}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def highlight(text: str, evidence: str) -> str:
    """``text`` escaped, with the evidence span (matched across any whitespace, any case) marked."""
    words = evidence.split()
    if not words:
        return _e(text)
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    pieces, cut = [], 0
    for match in pattern.finditer(text):
        pieces += [_e(text[cut : match.start()]), f"<mark>{_e(match.group())}</mark>"]
        cut = match.end()
    pieces.append(_e(text[cut:]))
    return "".join(pieces)


def _summary_table(results: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td class=num>{_e(value)}</td><td class=num>{_e(over)}</td>"
        f"<td>{_e(meaning)}</td></tr>"
        for name, value, over, meaning in metric_rows(results)
    )
    return f"<table><tr><th>metric</th><th>value</th><th>over</th><th>meaning</th></tr>{rows}</table>"


def _gates(results: dict[str, Any]) -> str:
    if not results["gates"]:
        return ""
    items = "".join(
        f"<li class={'gate-pass' if g['passed'] else 'gate-fail'}>{'pass' if g['passed'] else 'FAIL'}: "
        f"<code>{_e(g['metric'])}</code> ≥ {g['threshold']:g} ({_e(g['reason'])})</li>"
        for g in results["gates"]
    )
    return f"<h2>Gates</h2><ul>{items}</ul>"


def _plots(results: dict[str, Any]) -> str:
    images = [
        (hit_curve_png(results["hit_curve"]), "hit@k curve"),
        (latency_png(results["questions"]), "latency histogram"),
    ]
    tags = "".join(f'<img src="{uri}" alt="{alt}">' for uri, alt in images if uri)
    return f"<h2>Plots</h2><div class=plots>{tags}</div>" if tags else ""


def _view_link(c: dict[str, Any], view_base_url: str | None) -> str:
    """The citation in the evidence viewer: a link on the server at ``view_base_url``, else its path."""
    path = c.get("view_url")  # runs written before the viewer have none
    if not path:
        return ""
    if view_base_url:
        return f' <a href="{_e(view_base_url.rstrip("/") + path)}" target="_blank" rel="noopener">view in document</a>'
    return f" <span class=meta>view: <code>{_e(path)}</code></span>"


def _citation(c: dict[str, Any], evidence: str, view_base_url: str | None) -> str:
    where = (
        f"{c['source']}" + (f", page {c['page']}" if c["page"] else "") + f", chars {c['quote_start']}-{c['quote_end']}"
    )
    flags = f"support {c['support']:.2f} ({'supported' if c['supported'] else 'NOT supported'})"
    flags += ", contains the evidence" if c["contains_evidence"] else (", no evidence" if evidence else "")
    return (
        f"<li>[{c['number']}] {_e(c['title'])} <span class=meta>{_e(where)} · {_e(flags)}</span>"
        f"{_view_link(c, view_base_url)}"
        f"<blockquote>{highlight(c['quote'], evidence)}</blockquote>"
        f"<details><summary>passage</summary><blockquote>{highlight(c['passage'], evidence)}</blockquote>"
        "</details></li>"
    )


def _ranked(q: dict[str, Any]) -> str:
    rows = "".join(
        f"<li>{'<span class=rel>evidence</span> ' if p['relevant'] else ''}<span class=meta>{_e(p['source'])}, "
        f"chars {p['start']}-{p['end']}</span> {_e(p['preview'])}</li>"
        for p in q["retrieved"]
    )
    return f"<details><summary>ranked passages ({len(q['retrieved'])})</summary><ol>{rows}</ol></details>"


def _scores_line(q: dict[str, Any]) -> str:
    shown = [f"{name} {fmt(value)}" for name, value in q["scores"].items() if value is not None]
    rank = q["evidence_rank"]
    if q["evidence"] and q["answerable"]:
        shown.insert(0, f"evidence at rank {rank}" if rank else "evidence not retrieved")
    timing = q["timings"].get("total_ms")
    if timing is not None:
        shown.append(f"{timing:.0f} ms")
    return " · ".join(shown)


def _question(q: dict[str, Any], view_base_url: str | None) -> str:
    status = "fail" if q["problems"] else "pass"
    parts = [
        f'<div class="q {status}" id="q-{_e(q["id"])}">',
        f"<div><span class=badge>{status.upper()}</span> <code>{_e(q['id'])}</code> · "
        f"{'answerable' if q['answerable'] else 'unanswerable'}</div>",
    ]
    if q["problems"]:
        parts.append(f"<div class=problems>{_e('; '.join(q['problems']))}</div>")
    for user, assistant in q["history"]:
        parts.append(f"<div><span class=label>earlier</span> {_e(user)} → {_e(assistant)}</div>")
    parts.append(f"<div><span class=label>question</span> <strong>{_e(q['question'])}</strong></div>")
    if q["query"] != q["question"]:
        parts.append(f"<div><span class=label>searched</span> {_e(q['query'])}</div>")
    parts.append(f"<div><span class=label>answer</span><blockquote>{_e(q['answer'])}</blockquote></div>")
    if q["notice"]:
        parts.append(f"<div><span class=label>notice</span> {_e(q['notice'])}</div>")
    if q["answers"]:
        parts.append(f"<div><span class=label>references</span> {_e(' | '.join(q['answers']))}</div>")
    if q["evidence"]:
        source = f" ({q['source']})" if q["source"] else ""
        parts.append(
            f"<div><span class=label>evidence{_e(source)}</span><blockquote>{_e(q['evidence'])}</blockquote></div>"
        )
    if q["citations"]:
        items = "".join(_citation(c, q["evidence"], view_base_url) for c in q["citations"])
        parts.append(f"<div><span class=label>citations</span><ol>{items}</ol></div>")
    parts.append(_ranked(q))
    parts.append(f"<div class=meta>{_e(_scores_line(q))}</div></div>")
    return "".join(parts)


def _viewer_note(view_base_url: str | None) -> str:
    if view_base_url:
        return f"<p>Evidence links open the viewer of the docbot server at {_e(view_base_url)}.</p>"
    return (
        "<p>Evidence links: each citation shows its viewer path (<code>/view/…</code>); it opens on a running docbot "
        "server that indexed the same documents. Set DOCBOT_VIEW_BASE_URL to the address of that server (e.g. "
        "http://127.0.0.1:7860) to make them links.</p>"
    )


def render_html(results: dict[str, Any], view_base_url: str | None = None) -> str:
    """The whole report page: summary table, gates, plots, then every question, failures first; citations link to
    the evidence viewer of the server at ``view_base_url`` (else their viewer paths are shown)."""
    questions = sorted(results["questions"], key=lambda q: -len(q["problems"]))
    name = _set_name(results)
    failing = results["counts"]["failed"]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>docbot eval: {_e(name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>docbot eval: {_e(name)}</h1><p>{_e(_run_line(results))}</p>"
        f"<p>Created {_e(results['created'])}. {DASH} means nothing to measure; it fails any gate on that metric.</p>"
        f"{_summary_table(results)}{_gates(results)}{_plots(results)}"
        f"<h2>Questions: {failing} failing of {len(questions)}, failures first</h2>{_viewer_note(view_base_url)}"
        + "".join(_question(q, view_base_url) for q in questions)
        + "</body></html>\n"
    )
