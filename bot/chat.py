"""One conversational turn: condense the follow-up → retrieve → answer → citations, as a stream.

``Bot.stream`` yields text pieces (each a whole, checked sentence with its ``[n]``) and ends with the
final :class:`~bot.citations.Answer`; ``Bot.ask`` returns only the latter.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence

from bot.citations import (
    Answer,
    CitationBook,
    SupportChecker,
    content_words,
    is_supported,
    parse_markers,
    sentences_of_stream,
)
from bot.config import Settings
from bot.extractive import ExtractiveAnswerer
from bot.llm import BackendError, ModelBackend, build_backend
from index.retriever import HybridRetriever, Passage, open_retriever

REFUSAL = "The documents do not cover this question."
History = Sequence[tuple[str, str]]

_REFERRING = frozenset(
    "he him his she her hers it its they them their theirs that this those these there then such "
    "former latter same".split()
)
_MARKERS = re.compile(r"\[\d+(?:,\s*\d+)*\]")
_CONTEXT_WORDS = 12


def needs_context(question: str, history: History) -> bool:
    """A follow-up leans on the conversation: it refers back (he, that, the group...) or is very short."""
    words = re.findall(r"[a-z']+", question.lower())
    if any(word in _REFERRING for word in words):
        return True
    earlier = {w for turn in history for w in content_words(" ".join(turn))}
    definite = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "the"}
    return bool(definite & earlier) or len(content_words(question)) <= 2


def condense_deterministic(question: str, history: History) -> str:
    """The question plus the key words of the last exchange, when it is a follow-up."""
    if not history or not needs_context(question, history):
        return question
    user, assistant = history[-1]
    own = set(content_words(question))
    extra: list[str] = []
    for word in re.findall(r"[A-Za-z][\w'-]*", f"{user} {_MARKERS.sub('', assistant)}"):
        stem = content_words(word)
        if stem and stem[0] not in own and word not in extra:
            extra.append(word)
    return f"{question} ({' '.join(extra[:_CONTEXT_WORDS])})" if extra else question


class Bot:
    """The answering side of docbot, shared by the CLI, the page, the API and the evaluator."""

    def __init__(self, settings: Settings, retriever: HybridRetriever, backend: ModelBackend | None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.backend = backend
        self.extractive = ExtractiveAnswerer(retriever.embedder, settings.max_answer_sentences)
        self.checker = SupportChecker(retriever.embedder)

    @classmethod
    def from_settings(cls, settings: Settings) -> Bot:
        return cls(settings, open_retriever(settings), build_backend(settings))

    @property
    def generator_name(self) -> str:
        return self.backend.name if self.backend else "extractive"

    def condense(self, question: str, history: History) -> str:
        if not history:
            return question
        if self.backend is not None and needs_context(question, history):
            try:
                rewritten = self.backend.condense(question, list(history))
            except BackendError:
                rewritten = ""
            # A small model may wander off: keep its rewrite only if it still asks about the question's words.
            if rewritten and set(content_words(rewritten)) & set(content_words(question)):
                return rewritten
        return condense_deterministic(question, history)

    def ask(self, question: str, history: History = (), k: int | None = None) -> Answer:
        for piece in self.stream(question, history, k):
            if isinstance(piece, Answer):
                return piece
        raise AssertionError("stream ended without an answer")

    def stream(self, question: str, history: History = (), k: int | None = None) -> Iterator[str | Answer]:
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        started = time.perf_counter()
        query = self.condense(question, history)
        retrieval = self.retriever.search(query, k)
        retrieved = time.perf_counter()
        answer = Answer(question=question, text="", query=query, generator=self.generator_name)
        if retrieval.covered:
            if self.backend is not None:
                yield from self._model_answer(answer, query, retrieval.passages)
            if not answer.text:
                yield from self._extractive_answer(answer, query, retrieval.passages)
        if not answer.text:
            answer.refused = True
            answer.text = REFUSAL
            answer.citations = []
            yield REFUSAL
        done = time.perf_counter()
        answer.timings = {
            "retrieval_ms": round(1000 * (retrieved - started), 1),
            "generation_ms": round(1000 * (done - retrieved), 1),
            "total_ms": round(1000 * (done - started), 1),
        }
        yield answer

    def _extractive_answer(self, answer: Answer, query: str, passages: list[Passage]) -> Iterator[str]:
        book = CitationBook(passages)
        parts = []
        for pick in self.extractive.pick(query, passages):
            lo, hi = pick.span
            number = book.cite(pick.passage_index, pick.span, 1.0)
            part = f"{passages[pick.passage_index].text[lo:hi]} [{number}]"
            parts.append(part)
            yield part if len(parts) == 1 else " " + part
        if parts:
            if answer.generator != "extractive":
                answer.generator = f"extractive (fallback from {answer.generator})"
            answer.text = " ".join(parts)
            answer.citations = book.citations

    def _model_answer(self, answer: Answer, query: str, passages: list[Passage]) -> Iterator[str]:
        """The model's sentences that the passages support, each re-cited to its best passage."""
        assert self.backend is not None
        book = CitationBook(passages)
        parts: list[str] = []
        try:
            for sentence in sentences_of_stream(self.backend.answer(query, passages)):
                claim, numbers = parse_markers(sentence)
                if not claim:
                    continue
                cited = {n - 1 for n in numbers if 1 <= n <= len(passages)}
                support = self.checker.best_support([claim], passages, [cited])[0]
                if cited and (support is None or not is_supported(support.score)):
                    support = self.checker.best_support([claim], passages, [set()])[0]
                if support is None or not is_supported(support.score):
                    answer.unsupported.append(claim)
                    continue
                number = book.cite(support.passage_index, support.quote_span, support.score)
                part = f"{claim} [{number}]"
                parts.append(part)
                yield part if len(parts) == 1 else " " + part
        except BackendError as exc:
            answer.notice = f"The {self.generator_name} model failed ({exc}); answered from the passages instead."
            if parts:
                answer.notice = f"The {self.generator_name} model stopped early ({exc})."
        if parts:
            answer.text = " ".join(parts)
            answer.citations = book.citations
        elif answer.unsupported and answer.notice is None:
            answer.notice = "The model's answer was not supported by the passages; answered from the passages instead."
