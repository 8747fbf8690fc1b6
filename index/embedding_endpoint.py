"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (Ollama, vLLM, Text Embeddings Inference,
OpenAI): POST ``{"model": ..., "input": [texts]}`` → ``{"data": [{"index": i, "embedding": [...]}, ...]}``.

The prompts (index.prompts) are put before the texts here; the vectors are normalised here (not every server
does). The dimension is learnt from one probe at start, so a wrong URL or model fails at start, not mid-run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from index.errors import EmbeddingModelError
from index.prompts import Prompts

if TYPE_CHECKING:
    import httpx

    from index.settings import IndexSettings


def endpoint_url(base: str, path: str) -> str:
    """``base`` (``http://host:port/v1``) joined with ``path`` (``embeddings``), unless ``base`` ends with it."""
    base = base.rstrip("/")
    return base if base.endswith("/" + path) else f"{base}/{path}"


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


class EndpointEmbedder(Embeddings):
    """An ``index.protocols.Embedder`` over an OpenAI-compatible embeddings endpoint; a LangChain ``Embeddings``."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        prompts: Prompts | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        batch_size: int = 32,
    ) -> None:
        import httpx

        self.url = endpoint_url(url, "embeddings")
        self.model = model
        self.prompts = prompts or Prompts()
        self.name = self.prompts.identity(model)
        self.batch_size = batch_size
        self._client: httpx.Client = httpx.Client(timeout=timeout_s, headers=bearer(api_key))
        self.dimension: int = int(self._post(["dimension probe"]).shape[1])

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> EndpointEmbedder:
        if not settings.embeddings_url:
            raise ValueError("an endpoint embedder needs embeddings_url")
        key = settings.embeddings_api_key
        return cls(
            settings.embeddings_url,
            settings.embedding_model,
            prompts=Prompts(settings.embedding_query_prompt, settings.embedding_passage_prompt),
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.embeddings_timeout_s,
            batch_size=settings.embed_batch_size,
        )

    def _post(self, texts: list[str]) -> np.ndarray:
        """One request: ``texts`` → unit-length float32 rows in the order sent."""
        import httpx

        try:
            response = self._client.post(self.url, json={"model": self.model, "input": texts})
            response.raise_for_status()
            rows = _rows(response.json(), len(texts))
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbeddingModelError(
                f"the embeddings endpoint {self.url} (model {self.model!r}) failed: {exc}. Check DOCBOT_EMBEDDINGS_URL "
                "and DOCBOT_EMBEDDING_MODEL, and that the server is up"
            ) from exc
        vectors = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # An empty input is refused by some servers (OpenAI): a space embeds as nothing does.
        texts = [text if text.strip() else " " for text in texts]
        step = self.batch_size
        return np.vstack([self._post(texts[i : i + step]) for i in range(0, len(texts), step)])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Documents' texts, each after the passage prompt → unit-length float32 vectors, one row a text."""
        return self._embed(self.prompts.passages(texts))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions, each after the query prompt → unit-length float32 vectors, one row a text."""
        return self._embed(self.prompts.queries(texts))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()

    def close(self) -> None:
        self._client.close()


def _rows(body: Any, expected: int) -> list[list[float]]:
    """The vectors of an OpenAI-shaped reply, in input order (``index`` says which input each is)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ValueError("the reply has no 'data' list (is it an OpenAI-compatible /v1/embeddings?)")
    items = sorted(body["data"], key=lambda item: int(item.get("index", 0)))
    rows = [item.get("embedding") for item in items]
    if len(rows) != expected or not all(isinstance(row, list) and row for row in rows):
        raise ValueError(f"expected {expected} embeddings, got {len(rows)}")
    if len({len(row) for row in rows}) != 1:
        raise ValueError("the embeddings differ in length")
    return rows
