"""Reranking: a cross-encoder reads the question with each of a search's first fused candidates and orders them.

Off unless configured (``reranker``, ``reranker_url``). Two kinds:

- :class:`CrossEncoderReranker`: any sentence-transformers ``CrossEncoder`` on this machine (a local folder or a
  name in the Hugging Face cache; never downloaded).
- :class:`EndpointReranker`: an HTTP rerank endpoint. Text Embeddings Inference takes ``{"query", "texts"}`` and
  answers ``[{"index", "score"}]``; Infinity, vLLM and Cohere-compatible servers take ``{"model", "query",
  "documents"}`` and answer ``{"results": [{"index", "relevance_score"}]}``. One request carries both ``texts`` and
  ``documents`` (each server reads its own) and either reply is read.

A reranker only orders passages; whether the documents cover a question stays index.coverage's rule (similarity
and term support on the fused order), so a reranker never turns a refusal into an answer or back. An endpoint
that times out or fails leaves the fused order, with a warning in the log: it never fails the answer.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from index.embedding_endpoint import bearer
from index.errors import RerankerModelError, RerankError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx

    from index.protocols import Reranker
    from index.settings import IndexSettings
    from index.types import Passage

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` with one output (a relevance score), on the CPU."""

    def __init__(self, model: str, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        self.name = model
        self.batch_size = batch_size
        try:
            self._model = CrossEncoder(model, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RerankerModelError(
                f"DOCBOT_RERANKER: cannot load the cross-encoder {model!r} offline ({exc}); give the local folder of a "
                "sentence-transformers CrossEncoder or a model in the Hugging Face cache (docs/models.md), or leave "
                "DOCBOT_RERANKER empty"
            ) from exc
        if self._model.num_labels != 1:
            raise RerankerModelError(
                f"DOCBOT_RERANKER: {model!r} has {self._model.num_labels} outputs; a reranker gives one score a pair"
            )
        self._model.eval()

    def scores(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        predicted = self._model.predict(
            [(query, text) for text in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(score) for score in predicted.reshape(-1)]


class EndpointReranker:
    """An HTTP rerank endpoint (Text Embeddings Inference, Infinity, vLLM, Cohere-compatible)."""

    def __init__(self, url: str, model: str = "", *, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        import httpx

        self.url = url
        self.model = model
        self.name = f"{model or 'rerank'} at {url}"
        self._client: httpx.Client = httpx.Client(timeout=timeout_s, headers=bearer(api_key))

    def scores(self, query: str, texts: list[str]) -> list[float]:
        import httpx

        if not texts:
            return []
        body: dict[str, Any] = {"query": query, "texts": texts, "documents": texts}
        if self.model:
            body["model"] = self.model
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            return scores_of(response.json(), len(texts))
        except (httpx.HTTPError, ValueError) as exc:
            raise RerankError(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def scores_of(body: Any, count: int) -> list[float]:
    """Each text's score from a TEI reply (a list of ``{index, score}``) or a Cohere-shaped one (``{"results":
    [{index, relevance_score}]}``); a text the reply leaves out scores below every other."""
    items = body.get("results") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError("the reply is neither a list of {index, score} nor {results: [...]}")
    scores = [float("-inf")] * count
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"a result is not an object: {item!r}")
        index = int(item["index"])
        score = item.get("relevance_score", item.get("score"))
        if not 0 <= index < count or score is None:
            raise ValueError(f"a result names no text of the request or has no score: {item!r}")
        scores[index] = float(score)
    return scores


def rerank(reranker: Reranker, query: str, passages: Sequence[Passage], k: int) -> list[Passage]:
    """The ``k`` best of ``passages`` by ``reranker`` (ties keep the fused order); when it fails, the fused order's
    first ``k``, with a warning."""
    if len(passages) <= 1:
        return list(passages[:k])
    try:
        scores = reranker.scores(query, [p.text for p in passages])
    except RerankError as exc:
        log.warning("reranker %s failed, the fused order is kept: %s", reranker.name, exc)
        return list(passages[:k])
    order = sorted(range(len(passages)), key=lambda i: -scores[i])
    return [passages[i] for i in order[:k]]


@lru_cache(maxsize=4)
def _cross_encoder(model: str, batch_size: int) -> CrossEncoderReranker:
    """One loaded cross-encoder a model in a process, shared by every collection's retriever."""
    return CrossEncoderReranker(model, batch_size)


def reranker_from_settings(settings: IndexSettings) -> Reranker | None:
    """The reranker ``settings`` configure (reranker_url, else reranker), or None: no reranking."""
    if settings.reranker_url:
        key = settings.reranker_api_key
        return EndpointReranker(
            settings.reranker_url,
            settings.reranker,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.reranker_timeout_s,
        )
    if settings.reranker:
        return _cross_encoder(settings.reranker, settings.embed_batch_size)
    return None
