"""HTML for the chat page, built only from escaped strings: no text from a document or a question is ever markup.

Pure functions of typed values, so the escaping is tested without a browser; ``bot/web/page/`` puts the
results into Gradio components.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from bot.answer.citations import Answer, Citation
from bot.answer.markers import MARKER, numbers_of
from bot.documents.indexed import Context, IndexedDocument
from index.pipeline import IndexReport

#: The sources panel keeps the citations of this many recent answers (older [n] links then do nothing).
MAX_SOURCE_TURNS = 20
NO_PASSAGE = "No passage of the documents answers this question."


@dataclass(frozen=True, slots=True)
class Turn:
    """One answered question with the document text around each of its citations."""

    answer: Answer
    contexts: list[Context] = field(default_factory=list)
    #: What the sources panel says when the answer cites nothing (default: no passage answers the question).
    no_sources: str = NO_PASSAGE


def _text(value: str) -> str:
    """Escaped text with its line breaks kept."""
    return escape(value).replace("\n", "<br>")


def source_anchor(turn: int, number: int) -> str:
    return f"src-{turn}-{number}"


# --- chat messages -----------------------------------------------------------------------------


def question_html(question: str) -> str:
    return f'<div class="q">{_text(question)}</div>'


def _marker(turn: int, number: int, citation: Citation | None) -> str:
    """One ``[n]``: a link to the cited document in the evidence viewer, which ``static/page.js`` opens in source
    n's card (a new tab without JavaScript); while the answer streams, and so has no citations yet, a jump to the
    card. The class ``to-src-T-N`` names the card (Gradio's sanitiser keeps class, href and title, not data-*)."""
    anchor = source_anchor(turn, number)
    if citation is None:
        return f'<a class="cite" href="#{anchor}" title="Source {number}">[{number}]</a>'
    label = f"Source {number}: {citation.title} (opens it in its document)"
    return (
        f'<a class="cite to-{anchor}" href="{escape(citation.view_url)}" target="_blank" rel="noopener" '
        f'title="{escape(label)}">[{number}]</a>'
    )


def _linked(text: str, turn: int, citations: Sequence[Citation]) -> str:
    """Escaped answer text whose ``[n]`` markers open source n of this turn."""
    cited = {c.number: c for c in citations}
    parts: list[str] = []
    position = 0
    for match in MARKER.finditer(text):
        parts.append(_text(text[position : match.start(1) - 1]))  # up to the '[': the space before stays
        parts.append("".join(_marker(turn, n, cited.get(n)) for n in numbers_of(match.group(1))))
        position = match.end()
    parts.append(_text(text[position:]))
    return "".join(parts)


def answer_html(text: str, turn: int, answer: Answer | None = None) -> str:
    """An assistant message: streamed ``text`` so far, or the final ``answer`` with its notes."""
    if answer is None:
        return f'<div class="a streaming">{_linked(text, turn, [])}</div>'
    kind = "a refused" if answer.refused else "a"
    notes = [answer.notice] if answer.notice else []
    if answer.unsupported:
        count = len(answer.unsupported)
        notes.append(f"{count} sentence{'s' if count > 1 else ''} the passages did not support left out.")
    note = "".join(f'<div class="a-note">{_text(n)}</div>' for n in notes)
    return f'<div class="{kind}">{_linked(answer.text, turn, answer.citations)}</div>{note}{_related(answer)}'


def _related(answer: Answer) -> str:
    """The passages offered when the documents do not give the answer: links to read them, not citations."""
    if not answer.related:
        return ""
    items = "".join(
        f'<li><a class="related-open" href="{escape(r.view_url)}" target="_blank" rel="noopener">'
        f'{_text(r.title)}</a> <span class="related-where">{_text(r.source)}'
        f"{_text(f', page {r.page}') if r.page else ''}</span></li>"
        for r in answer.related
    )
    return f'<div class="a-related">Related passages (not the answer):<ul>{items}</ul></div>'


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The Chatbot value: question and answer for every turn, strictly alternating."""
    messages: list[dict[str, str]] = []
    for number, turn in enumerate(turns):
        messages.append({"role": "user", "content": question_html(turn.answer.question)})
        messages.append({"role": "assistant", "content": answer_html(turn.answer.text, number, turn.answer)})
    return messages


# --- sources panel -----------------------------------------------------------------------------


def _highlight(text: str, lo: int, hi: int, tag: str, css: str) -> str:
    if not 0 <= lo < hi <= len(text):
        return _text(text)
    return f'{_text(text[:lo])}<{tag} class="{css}">{_text(text[lo:hi])}</{tag}>{_text(text[hi:])}'


def _passage_html(citation: Citation) -> str:
    lo = citation.quote_start - citation.passage_start
    hi = citation.quote_end - citation.passage_start
    if citation.passage[lo:hi] != citation.quote:
        lo = citation.passage.find(citation.quote) if citation.quote else -1
        hi = lo + len(citation.quote)
    return _highlight(citation.passage, lo, hi, "mark", "src-quote")


def _context_html(context: Context) -> str:
    text = context.text
    (p_lo, p_hi), (q_lo, q_hi) = context.passage, context.quote
    inner = _highlight(text[p_lo:p_hi], q_lo - p_lo, q_hi - p_lo, "mark", "src-quote")
    before = ("… " if context.clipped_before else "") + text[:p_lo]
    after = text[p_hi:] + (" …" if context.clipped_after else "")
    return f'{_text(before)}<span class="ctx-passage">{inner}</span>{_text(after)}'


def _view_link(citation: Citation) -> str:
    """Opens the evidence viewer (bot.web.viewer) in a new tab: the document at the highlighted sentence."""
    label = f"Open source {citation.number} in its document"
    return (
        f'<a class="src-open" href="{escape(citation.view_url)}" target="_blank" rel="noopener" '
        f'title="{escape(label)}">open in document ↗</a>'
    )


def _card_html(turn: int, citation: Citation, context: Context | None) -> str:
    where = [citation.source] + ([f"page {citation.page}"] if citation.page else [])
    if not citation.supported:
        where.append("weak support")
    surrounding = (
        '<details class="src-context"><summary>Show surrounding text</summary>'
        f'<div class="ctx-text">{_context_html(context)}</div></details>'
        if context is not None
        else ""
    )
    return (
        f'<article class="src-card" id="{source_anchor(turn, citation.number)}" tabindex="-1">'
        f'<h4 class="src-title"><span class="src-num">{citation.number}</span> {_text(citation.title)}</h4>'
        f'<p class="src-meta">{escape(" · ".join(where))} · {_view_link(citation)}</p>'
        f'<blockquote class="src-passage">{_passage_html(citation)}</blockquote>{surrounding}</article>'
    )


def _turn_html(number: int, turn: Turn, shown: bool) -> str:
    answer = turn.answer
    timing = f" in {answer.timings['total_ms'] / 1000:.1f} s" if "total_ms" in answer.timings else ""
    head = (
        f'<p class="src-head">Sources for “{_text(answer.question)}”'
        f'<span class="src-by"> · answered by {escape(answer.generator)}{timing}</span></p>'
    )
    if answer.citations:
        contexts: list[Context | None] = [*turn.contexts, *[None] * len(answer.citations)]
        body = "".join(_card_html(number, c, contexts[i]) for i, c in enumerate(answer.citations))
    else:
        body = f'<p class="src-none">{_text(turn.no_sources)}</p>'
    css = "src-turn shown" if shown else "src-turn"
    return f'<section class="{css}" id="src-turn-{number}">{head}{body}</section>'


def sources_html(turns: Sequence[Turn]) -> str:
    """Every recent answer's sources; the latest is shown, a click on an older [n] shows that answer's."""
    if not turns:
        return (
            '<div class="docbot-sources"><p class="src-intro">Sources appear here: the passage behind each '
            "answer, with the supporting sentence highlighted. Click a <b>[1]</b> marker in an answer to "
            "see its source and the document at that sentence.</p></div>"
        )
    first = max(0, len(turns) - MAX_SOURCE_TURNS)
    sections = "".join(_turn_html(n, turns[n], n == len(turns) - 1) for n in range(first, len(turns)))
    return f'<div class="docbot-sources">{sections}</div>'


# --- header and documents ----------------------------------------------------------------------


def _status_line(generator: str, embedding_model: str, contents: str) -> str:
    return (
        '<div class="docbot-status">'
        f"<span>Answers: <b>{escape(generator)}</b></span>"
        f"<span>Embeddings: <b>{escape(embedding_model)}</b></span>"
        f"<span>{escape(contents)}</span></div>"
    )


def status_html(generator: str, embedding_model: str, documents: int, chunks: int) -> str:
    """Which models answer, how much is indexed, and a clear message when nothing is."""
    counts = f"{documents} document{'' if documents == 1 else 's'} · {chunks} passage{'' if chunks == 1 else 's'}"
    line = _status_line(generator, embedding_model, counts)
    if chunks:
        return line
    return line + (
        '<div class="docbot-empty" role="status"><b>The index is empty.</b> Add documents in the '
        "<b>Documents</b> tab (or run <code>docbot index PATH</code>), then ask a question.</div>"
    )


def store_down_html(generator: str, embedding_model: str, where: str) -> str:
    """The header while the vector store (``where``: "at <url>") cannot be reached: no counts, and what to expect."""
    return _status_line(generator, embedding_model, "documents: unknown") + (
        f'<div class="docbot-down" role="alert"><b>The vector store {escape(where)} is unreachable</b>, so questions '
        "cannot be answered right now. Answers resume by themselves as soon as it is back; reload the page then to "
        "see the documents again.</div>"
    )


def _when(document: IndexedDocument) -> str:
    if document.indexed_at is None:
        return '<span title="indexed with docbot index">—</span>'
    return escape(document.indexed_at.replace("T", " ").replace("+00:00", " UTC"))


def _uploaded(document: IndexedDocument) -> str:
    """Who uploaded it (known on every replica: bot.state.uploads), or nothing for a file indexed by the CLI."""
    if not document.uploaded:
        return ""
    return f" <small>(uploaded by {escape(document.owner)})</small>" if document.owner else " <small>(uploaded)</small>"


def documents_html(documents: Sequence[IndexedDocument]) -> str:
    if not documents:
        return '<p class="doc-none">No documents yet: upload some below.</p>'
    rows = "".join(
        "<tr>"
        f'<td class="doc-title">{_text(d.title)}</td>'
        f'<td class="doc-file">{escape(d.source)}{_uploaded(d)}</td>'
        f'<td class="doc-num">{d.chunks}{f" <small>({d.pages} pages)</small>" if d.pages else ""}</td>'
        f'<td class="doc-when">{_when(d)}</td>'
        "</tr>"
        for d in documents
    )
    return (
        '<div class="doc-table-wrap"><table class="doc-table"><thead><tr><th>Title</th><th>File</th>'
        f"<th>Passages</th><th>Indexed</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def report_html(report: IndexReport | None, refused: Sequence[str]) -> str:
    """What an upload did: files added or updated (now answerable), unchanged, failed or refused, and why."""
    items: list[str] = [f'<li class="bad">Refused: {_text(reason)}</li>' for reason in refused]
    if report is not None:
        for label, names in (("Added", report.added), ("Updated", report.updated), ("Unchanged", report.unchanged)):
            if names:
                items.append(f"<li>{label}: {escape(', '.join(names))}</li>")
        items += [f'<li class="bad">Failed: {escape(source)}: {_text(reason)}</li>' for source, reason in report.failed]
        done = f"{report.chunks_embedded} passages embedded in {report.seconds:.1f} s."
        if report.added or report.updated:
            done += " You can ask about them now."
        items.append(f"<li>{escape(done)}</li>")
    return f'<ul class="upload-report">{"".join(items)}</ul>'


def failure_html(message: str, refused: Sequence[str] = ()) -> str:
    """A change to the documents that failed (an upload's index run, a removal): what the page says about it,
    then any files refused before the run."""
    listed = report_html(None, refused) if refused else ""
    return f'<p class="upload-failed" role="alert">{_text(message)}</p>{listed}'


def notice_html(text: str) -> str:
    return f'<p class="hint">{_text(text)}</p>'


def removed_html(document: IndexedDocument, passages: int) -> str:
    return (
        f'<ul class="upload-report"><li>Removed {_text(document.title)} ({escape(document.source)}, '
        f"{passages} passages).</li></ul>"
    )
