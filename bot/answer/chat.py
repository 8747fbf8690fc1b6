"""One conversational turn: condense the follow-up → retrieve → answer → citations, as a stream.

``Bot.stream`` yields text pieces (each a whole, checked sentence with its ``[n]``) and ends with the
final :class:`~bot.answer.citations.Answer`; ``Bot.ask`` returns only the latter.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Generator, Iterable, Iterator, Sequence

from bot.answer.citations import Answer, CitationBook, Related
from bot.answer.errors import BackendError, QuestionError
from bot.answer.extractive import ExtractiveAnswerer
from bot.answer.llm import ModelBackend, is_model_refusal
from bot.answer.markers import MARKER, parse_markers
from bot.answer.question_parts import question_parts
from bot.answer.supplies import supplies_at, unsupplied_reason
from bot.answer.support import Support, SupportChecker
from bot.answer.text import content_words, sentence_spans, sentences_of_stream
from bot.config import Settings
from index.coverage import DENSE_WEIGHT
from index.filters import Filter
from index.protocols import Retriever
from index.retriever import SUPPORT_PASSAGES, near_duplicate
from index.term_support import missing_terms
from index.types import Retrieval

REFUSAL = "The documents do not cover this question."
#: The reply to a question the documents are about but do not answer; the closest passages come as related.
NOT_GIVEN = "The documents do not give this. The closest passages are listed as related."
#: How many passages a NOT_GIVEN reply offers as related.
RELATED = 3
History = Sequence[tuple[str, str]]

#: Pronouns that point back; one the question has named nothing for before it leans on the conversation.
_PRONOUNS = frozenset("he him his she her hers it its they them their theirs".split())
#: Words that point back to something said ("that", "the latter"); only a short question leans on them ("Why did
#: that happen?"), a longer one uses them inside itself ("the mason that built the oven").
_POINTING = frozenset("that this those these there then such former latter same".split())
#: A question with at most this many content words may lean on the conversation through "that" or "the X".
_SHORT_QUESTION = 3
#: A "their" after a plural noun belongs to it ("members ... their dividend"); a "them" does not ("Which warplanes
#: attacked *them*?": the thing attacked was said before).
_PLURAL = frozenset("their theirs".split())
#: Words ending in "s" that name no plural thing a "their" could stand for.
_NOT_PLURAL = frozenset("does is was has this its his hers ours yours always perhaps across".split())
#: "it" that stands for nothing: "How much does it cost to park...", "Why is it important for ... to ...".
_EXPLETIVE_IT = re.compile(r"\bit\s+(?:[\w'’-]+\s+){0,3}(?:to|that)\b", re.I)
_CONTEXT_WORDS = 12
#: An earlier answer this short names the topic ("The Islamic State (ISIS)."); a longer one is a passage.
_SHORT_ANSWER_WORDS = 12
#: A model's rewrite of a follow-up longer than this is not a question but an answer, or worse.
_MAX_REWRITE_CHARS = 300
#: A model sentence sharing this much of its words with an earlier one says nothing new.
_REPEAT = 0.8
#: Filler small models put before a claim ("The answer to this question is: ..."); it is not part of the claim.
_PREAMBLE = re.compile(
    r"^(?:the\s+)?answer(?:\s+to\s+(?:this|the|your)\s+question)?\s+is\s*:\s*"
    r"|^according\s+to\s+(?:the\s+)?(?:passages?|documents?|sources?)(?:\s*\[?\d+\]?)?\s*,\s*",
    re.IGNORECASE,
)


#: A question opening with these carries on from the one before ("And in May?", "What about the second one?").
_CARRIES_ON = re.compile(r"\s*(?:and|but|also|what about|how about|then)\b", re.I)
#: Names an earlier answer gives that a follow-up asking after a person ("Which newspaper does *he* work for?"
#: after an answer naming Con Coflin) takes into its query.
_PERSONAL = re.compile(r"\b(?:he|him|his|she|her|hers|they|them|their)\b", re.I)
_ANSWER_NAMES = 2
_NAME_RUN = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]*[a-z][\w'’-]*(?:\s+(?:al-|el-|de |van |von )?[A-Z][\w'’-]+)*")


def needs_context(question: str, history: History) -> bool:
    """A follow-up leans on the conversation: it refers back (he, that, the group...), carries on ("And in
    May?") or is very short."""
    if _CARRIES_ON.match(question) or _unresolved_pronoun(question):
        return True
    size = len(content_words(question))
    if size <= 1:
        return True
    if size > _SHORT_QUESTION:
        return False
    words = re.findall(r"[a-z']+", question.lower())
    earlier = {w for turn in history for w in content_words(_said(turn))}
    definite = content_words(" ".join(words[i + 1] for i, w in enumerate(words[:-1]) if w == "the"))
    return any(word in _POINTING for word in words) or bool(earlier.intersection(definite))


def _unresolved_pronoun(question: str) -> bool:
    """Whether a pronoun of the question has nothing before it in the question to stand for: no name and no
    "the/a/an ..." ("Which newspaper does *he* work for?", not "When does Port Elsen hold *its* festival?" or "The
    author left *his* job: why?")."""
    named = plural = False
    expletive = _EXPLETIVE_IT.search(question) is not None
    for n, word in enumerate(re.findall(r"[\w'’-]+", question)):
        lower = word.lower()
        stands_for = named or (lower in _PLURAL and plural) or (lower == "it" and expletive)
        if lower in _PRONOUNS and not stands_for:
            return True
        named = named or lower in ("the", "a", "an") or (n > 0 and word[:1].isupper())
        plural = plural or (len(lower) > 3 and lower.endswith("s") and lower not in _NOT_PLURAL)
    return False


def condense_deterministic(question: str, history: History) -> str:
    """The question plus the key words of the recent turns, when it is a follow-up.

    Words come from the last two questions, and from an answer only when it is short ("The Islamic
    State."): a long answer's words would pull the search back to the passage already given.
    """
    if not history or not needs_context(question, history):
        return question
    own = set(content_words(question))
    said = [_said(turn, with_answer=len(turn[1].split()) <= _SHORT_ANSWER_WORDS) for turn in reversed(history[-2:])]
    extra: list[str] = []
    names = answer_names(history[-1]) if _PERSONAL.search(question) else []
    for word in re.findall(r"[A-Za-z][\w'-]*", " ".join([*names, *said])):
        stem = content_words(word)
        if stem and stem[0] not in own and word not in extra:
            extra.append(word)
    return f"{question} ({' '.join(extra[:_CONTEXT_WORDS])})" if extra else question


def answer_names(turn: tuple[str, str]) -> list[str]:
    """The names the first sentence of a turn's answer gives that its question did not ("Con Coflin" for "Who is
    the British writer quoted?"): what "he", "she" or "it" in the next question most likely means."""
    user, assistant = turn
    if assistant in (REFUSAL, NOT_GIVEN):
        return []
    text = MARKER.sub("", assistant)
    first = text[: next((hi for lo, hi in sentence_spans(text)), len(text))]
    asked = {word.lower() for word in re.findall(r"[\w'’-]+", user)}
    names = [
        name
        for name in dict.fromkeys(match.group(0) for match in _NAME_RUN.finditer(first))
        if not {word.lower() for word in name.split()} <= asked
    ]
    return names[:_ANSWER_NAMES]


def _said(turn: tuple[str, str], with_answer: bool = True) -> str:
    """What a turn says about the topic: the question, and the answer unless it was a refusal (markers off)."""
    user, assistant = turn
    return user if assistant in (REFUSAL, NOT_GIVEN) or not with_answer else f"{user} {MARKER.sub('', assistant)}"


def strip_preamble(claim: str) -> str:
    """The claim without filler such as "The answer to this question is:" in front of it."""
    rest = _PREAMBLE.sub("", claim, count=1)
    return rest[:1].upper() + rest[1:] if rest != claim else claim


#: The tags docbot's prompt wraps passages in (bot.answer.llm): a small model copies them into its reply, often
#: after a passage's heading.
_PROMPT_TAG = re.compile(r"</?passage\b[^>]*>", re.IGNORECASE)


def model_claims(pieces: Iterable[str]) -> Iterator[tuple[str, list[int]]]:
    """A model's streamed reply as claims with the passage numbers they cite; filler and repeats left out."""
    seen: list[str] = []
    for sentence in sentences_of_stream(pieces):
        claim, numbers = parse_markers(" ".join(_PROMPT_TAG.sub(" ", sentence).split()))
        claim = strip_preamble(claim)
        if claim.startswith("#"):  # a heading copied from a passage states nothing
            continue
        if claim and not any(near_duplicate(claim, earlier, _REPEAT) for earlier in seen):  # small models repeat
            seen.append(claim)
            yield claim, numbers


def plausible_rewrite(rewrite: str, question: str, history: History) -> bool:
    """A model's standalone version of a follow-up is used only if it is one question that keeps most of the
    question's words and brings in some of the conversation's.

    Small models often answer instead of rewriting, echo the question, or drift to an earlier one; each would
    send retrieval somewhere else.
    """
    own = set(content_words(question))
    words = set(content_words(rewrite))
    earlier = {w for turn in history for w in content_words(" ".join(turn))}
    return (
        rewrite.endswith("?")
        and len(rewrite) <= _MAX_REWRITE_CHARS
        and 2 * len(own & words) >= len(own)
        and bool((words - own) & earlier)
    )


def plain_quote(text: str) -> str:
    """Document text as an answer quotes it, its own ``[n]`` look-alikes turned into ``(n)``: every marker in an
    answer is then a citation docbot made, never one a document planted to point elsewhere."""
    return MARKER.sub(lambda marker: marker.group(0).replace("[", "(").replace("]", ")"), text)


def coverage_reason(query: str, retrieval: Retrieval) -> str:
    """Why the documents do or do not cover ``query``, in figures (index.coverage)."""
    coverage = retrieval.coverage
    if retrieval.floor == -math.inf:  # coverage = floor
        verdict = "covered" if retrieval.covered else "not covered"
        return f"{verdict}: similarity {retrieval.best_similarity:.2f}, relevance_floor {coverage.relevance_floor}"
    figures = (
        f"term support {coverage.support:.2f} + {DENSE_WEIGHT:g} × similarity {retrieval.best_similarity:.2f} = "
        f"{retrieval.evidence:.2f}"
    )
    if retrieval.covered:
        return f"covered: {figures} ≥ {retrieval.floor:.2f}"
    missing = missing_terms(query, [p.text for p in retrieval.passages[:SUPPORT_PASSAGES]])
    unnamed = f"; the passages do not name: {', '.join(missing[:5])}" if missing else ""
    return f"not covered: {figures} < {retrieval.floor:.2f}{unnamed}"


class Bot:
    """The answering side of docbot, shared by the CLI, the page, the API and the evaluator."""

    def __init__(self, settings: Settings, retriever: Retriever, backend: ModelBackend | None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.backend = backend
        self.extractive = ExtractiveAnswerer(retriever.embedder, retriever.store, settings.max_answer_sentences)
        self.checker = SupportChecker(retriever.embedder, retriever.store)

    @property
    def generator_name(self) -> str:
        return self.backend.name if self.backend else "extractive"

    def condense(self, question: str, history: History) -> str:
        """The question as a standalone search query: rewritten by the model if there is one, else by rule."""
        if not history or not needs_context(question, history):
            return question
        if self.backend is not None:
            try:
                rewritten = self.backend.condense(question, list(history))
            except BackendError:
                rewritten = ""
            if plausible_rewrite(rewritten, question, history):
                return rewritten
        return condense_deterministic(question, history)

    def ask(self, question: str, history: History = (), k: int | None = None, where: Filter | None = None) -> Answer:
        for piece in self.stream(question, history, k, where):
            if isinstance(piece, Answer):
                return piece
        raise AssertionError("stream ended without an answer")

    def stream(
        self, question: str, history: History = (), k: int | None = None, where: Filter | None = None
    ) -> Iterator[str | Answer]:
        """Text pieces of the answer as they are checked, then the final :class:`Answer`; ``where``: only passages
        that pass this filter (index.filters)."""
        question = question.strip()
        if not question:
            raise QuestionError("the question is empty")
        if not re.search(r"[^\W_]", question):  # "?", "...": nothing to search for, however close it embeds
            raise QuestionError("the question has no words: ask it in words")
        started = time.perf_counter()
        query = self.condense(question, history)
        retrieval = self.retriever.search(query, k, where=where)
        retrieved = time.perf_counter()
        answer = Answer(question=question, text="", query=query, generator=self.generator_name)
        if retrieval.covered:
            yield from self._answer(answer, query, retrieval, [said for _, said in history])
        answer.why = coverage_reason(query, retrieval)
        if not answer.text:
            answer.refused = True
            answer.citations = []
            if retrieval.covered:  # on the documents' subject, but no sentence gives what is asked
                answer.text = NOT_GIVEN
                answer.related = [Related.of(p) for p in retrieval.passages[:RELATED]]
                answer.why += f"; declined: {unsupplied_reason(query)}"
            else:
                answer.text = REFUSAL
            yield answer.text
        done = time.perf_counter()
        answer.timings = {
            "retrieval_ms": round(1000 * (retrieved - started), 1),
            "generation_ms": round(1000 * (done - retrieved), 1),
            "total_ms": round(1000 * (done - started), 1),
        }
        yield answer

    def _answer(self, answer: Answer, query: str, retrieval: Retrieval, already_said: Sequence[str]) -> Iterator[str]:
        """The model's checked answer; the extractive one when there is no model or nothing usable came of it."""
        problem = None
        if self.backend is not None:
            problem = yield from self._model_answer(answer, query, retrieval)
            if answer.text:
                return
        yield from self._extractive_answer(answer, query, retrieval, already_said)
        if problem:
            outcome = "answered from the passages instead" if answer.text else "the passages hold no answer either"
            answer.notice = f"The {self.generator_name} model {problem}; {outcome}."

    def _extractive_answer(
        self, answer: Answer, query: str, retrieval: Retrieval, already_said: Sequence[str] = ()
    ) -> Iterator[str]:
        passages = retrieval.passages
        book = CitationBook(passages)
        parts = []
        for pick in self.extractive.pick(query, passages, already_said, retrieval.query_vector):
            lo, hi = pick.span
            number = book.cite(Support(pick.passage_index, pick.span, 1.0, 1.0, pick.score))
            part = f"{plain_quote(passages[pick.passage_index].text[lo:hi])} [{number}]"
            parts.append(part)
            yield part if len(parts) == 1 else " " + part
        if parts:
            if answer.generator != "extractive":
                answer.generator = f"extractive (fallback from {answer.generator})"
            answer.text = " ".join(parts)
            answer.citations = book.citations

    def _model_answer(self, answer: Answer, query: str, retrieval: Retrieval) -> Generator[str, None, str | None]:
        """The model's sentences that the passages support, each cited to the sentence supporting it.

        Returns why nothing usable came of the model, or ``None`` when it answered. The model saying the passages
        hold no answer is one such reason, not a refusal: whether the documents cover the question is decided
        once, from the retrieval evidence (``Retrieval.covered``), for every generator alike; a covered question
        is then answered from the passages.
        """
        assert self.backend is not None
        passages = retrieval.passages
        evidence = self.checker.evidence(query, retrieval)
        single = len(question_parts(query)) == 1

        def gives(support: Support) -> bool:  # the sentence backing a claim supplies what is asked (one-part questions)
            return not single or supplies_at(query, passages, support.passage_index, support.quote_span)

        book = CitationBook(passages)
        parts: list[str] = []
        refused = False
        failure = None
        try:
            for claim, numbers in model_claims(self.backend.answer(query, passages)):
                if is_model_refusal(claim):
                    refused = True
                    continue
                support = evidence.support(claim, {n - 1 for n in numbers})
                if support is None or not (support.supported and support.on_topic and gives(support)):
                    answer.unsupported.append(claim)
                    continue
                parts.append(f"{claim} [{book.cite(support)}]")
                yield parts[-1] if len(parts) == 1 else " " + parts[-1]
        except BackendError as exc:
            failure = str(exc)
        if parts:
            answer.text = " ".join(parts)
            answer.citations = book.citations
            answer.notice = _partial_notice(self.generator_name, failure, len(answer.unsupported))
            return None
        if failure is not None:
            return f"failed ({failure})"
        if refused:
            return "said the passages hold no answer"
        return "wrote nothing the passages support" if answer.unsupported else "gave an empty reply"


def _partial_notice(generator: str, failure: str | None, dropped: int) -> str | None:
    notes = []
    if failure is not None:
        notes.append(f"The {generator} model stopped early ({failure}).")
    if dropped:
        notes.append(f"Left out {dropped} sentence(s) of the model's answer that the passages do not support.")
    return " ".join(notes) or None
