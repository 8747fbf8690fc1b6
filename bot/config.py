"""The one typed settings object: environment variables ``DOCBOT_*`` and an optional ``docbot.toml``.

Settings are built once at the edge (the CLI or ``app.py``) and passed down; nothing else reads the
environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import NoDecode

from index.settings import IndexSettings

GeneratorName = Literal["extractive", "local", "openai"]
AnonymousRole = Literal["none", "reader", "editor", "admin"]


#: A header name docbot reads identity from: no underscores (nginx drops such headers, other servers map them).
_HEADER = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
#: An origin a page may embed docbot from: ``scheme://host[:port]``, no path.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _split_list(value: object) -> object:
    """Accept ``"a,b,c"`` from the environment as well as a real list from TOML."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(IndexSettings):
    """Everything docbot can be told. Every field can be set as ``DOCBOT_<NAME>``.

    The storage, indexing and retrieval sections come from :class:`index.settings.IndexSettings` (with the
    environment and ``docbot.toml`` sources); this class adds answering and serving.
    """

    # --- answering -----------------------------------------------------------------------------
    generator: GeneratorName = Field(
        "extractive",
        description="Who writes the answer: extractive (quotes passage sentences, no model), local (the bundled "
        "SmolLM2 through llama.cpp, needs the [local] extra) or openai (any OpenAI-compatible server).",
    )
    max_answer_sentences: int = Field(3, ge=1, le=20, description="Sentences the extractive answerer quotes at most.")
    gguf_path: Path | None = Field(None, description="GGUF for the local generator; default: bundled SmolLM2.")
    llm_context: int = Field(4096, ge=512, description="The local model's context window in tokens.")
    llm_max_tokens: int = Field(256, ge=16, description="Tokens a model may write for one answer.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature of the model (0 = greedy).")
    llm_timeout_s: float = Field(
        60.0, gt=0, description="Seconds to wait for a model's reply before falling back to the extractive answer."
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="Base URL of the OpenAI-compatible server (generator openai)."
    )
    openai_model: str = Field("docbot-local", description="Model name sent to the OpenAI-compatible server.")
    openai_api_key: SecretStr | None = Field(None, description="Key for the OpenAI-compatible endpoint.")

    # --- collections ---------------------------------------------------------------------------
    default_collection: str = Field(
        "default",
        description="The collection (docbot collections) that index, ask, eval and the served page and API use when "
        "none is named (docbot serve --collection sets it for one server).",
    )

    # --- serving -------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface docbot serve listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port docbot serve listens on.")
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
    signin_tokens: int = Field(
        10_000,
        ge=1,
        description="Page sign-ins a server remembers at once; beyond it the least recently used is signed out "
        "(each sign-in costs a little memory, and anyone with a key can sign in again and again).",
    )
    signin_token_ttl_s: float = Field(
        12 * 3600.0, gt=0, description="Seconds a page sign-in lasts; then the page asks to sign in again."
    )
    embed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (https://wiki.example.com) whose pages may embed the widget.",
    )
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest file the page accepts for upload.")
    upload_cache_bytes: int = Field(
        200 * 1024 * 1024,
        ge=1,
        description="Most bytes Gradio's upload cache may hold (files chosen on the page but not yet added); an "
        "upload that would go over it is refused. Cached copies are deleted once added or refused.",
    )
    upload_quota_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1,
        description="Most bytes of the upload cache one caller may hold (as proved: a user, a key, the wiki's proxy "
        "reader, or all anonymous callers together), counted as they arrive: uploads under way and files chosen but "
        "not yet added. An upload that would go over it is refused (429) until they are added or cleared.",
    )
    upload_body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds an upload may go without sending any of its body; then it is dropped (408), its "
        "partial files deleted and its bytes no longer held against the cache or the caller.",
    )
    upload_cache_ttl_s: float = Field(
        30 * 60.0,
        gt=0,
        description="Seconds a file may wait in the upload cache to be added; older ones are deleted (by the upload "
        "sweep every upload_sweep_interval_s, and before each upload), so files chosen and never added free their "
        "room without a restart.",
    )
    upload_sweep_interval_s: float = Field(
        300.0,
        ge=0,
        description="How often (in seconds) a server deletes what uploads left on its own disk after their document "
        "went, perhaps through another replica: files of its uploads folders that no upload record and no passage "
        "names, and copies of originals (data_dir/originals) that no upload record names. Also once at start; "
        "0 = never.",
    )
    upload_sweep_grace_s: float = Field(
        3600.0,
        ge=0,
        description="How long (in seconds since it was written) a file of an uploads folder that nothing names yet "
        "is left alone by the sweep: a file being added is recorded only once it is indexed.",
    )
    max_body_bytes: int = Field(256 * 1024, ge=1, description="Largest request body /api and /v1 accept.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question /api and /v1 accept.")
    rate_limit_per_minute: int = Field(
        120, ge=1, description="Requests one API key (or address) may make to /api and /v1 in a minute."
    )

    # --- evidence views (bot/view/) ---------------------------------------------------------------
    view_base_url: str | None = Field(
        None,
        description="Address of the docbot server (http://127.0.0.1:7860) that the eval report's evidence links "
        "open in the viewer; unset, the report shows each link's path and notes that a server must be running.",
    )
    view_dpi: int = Field(
        150, ge=36, le=600, description="Resolution a cited PDF page is drawn at (zooming in asks for more)."
    )
    view_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Give up on showing a PDF page (drawing it or finding a sentence on it) after this many seconds: "
        "its worker process is killed and the view says why. Its memory is capped by parse_memory_mb.",
    )
    view_cache_bytes: int = Field(
        500 * 1024 * 1024,
        ge=0,
        description="Most bytes of drawn PDF pages kept on disk (data_dir/views); the least recently viewed go first.",
    )
    view_text_cache_mb: int = Field(
        64,
        ge=0,
        description="Memory (MB) for the text of documents the viewer read again (DOCX, HTML, Markdown, text), kept "
        "per document version so the next view of it parses nothing; the least recently viewed go first.",
    )
    max_view_parses: int = Field(
        2,
        ge=1,
        le=64,
        description="Documents the viewer reads again at once, each in a parse worker process (under "
        "parse_timeout_s); a view that would need one more gets a 503 'busy, try again' page at once, and views of a "
        "document being read wait for that reading.",
    )

    # --- shared state (bot/state) ---------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        description="The state database (conversations, feedback, grants, rate-limit counters) as an SQLAlchemy "
        "URL; replicas share one, e.g. postgresql+psycopg://docbot:secret@db.internal:5432/docbot. Default: SQLite "
        "in the data directory (state.db).",
    )
    conversation_retention_days: int = Field(
        365,
        ge=0,
        description="docbot purge deletes the conversations (with their turns) not continued for this many days; "
        "0 keeps them forever. Nothing is deleted until docbot purge runs (from cron, say).",
    )
    vote_retention_days: int = Field(
        0,
        ge=0,
        description="docbot purge deletes the votes on answers cast (or last changed) more than this many days ago; "
        "0 (the default) keeps them, for docbot feedback export.",
    )

    # --- the network edge (bot/web/edge.py) ------------------------------------------------------
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (10.0.0.5, 10.0.0.0/8) of reverse proxies whose X-Forwarded-For, "
        "Forwarded, X-Real-IP and X-Forwarded-Proto/Host headers are believed; from anyone else they are ignored.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers for (others get 400); '*.example.com' matches subdomains, '*' "
        "any name. Default: 127.0.0.1, localhost, ::1 and DOCBOT_HOST when it names one interface.",
    )
    max_concurrent_answers: int = Field(
        4,
        ge=1,
        le=1000,
        description="Answers computed at once across the page, /api and /v1; beyond it the API answers 503 with "
        "Retry-After and the page says it is busy (4 keeps two cores responsive).",
    )
    max_queued_events: int = Field(
        64, ge=1, description="Page events (questions, uploads) allowed to wait in Gradio's queue; beyond it, refused."
    )

    # --- who may read which collection (bot/access/policy.py, bot/state/grants.py) ----------------
    proxy_auth: bool = Field(
        False,
        description="Sign readers in from the wiki's reverse proxy: its user header (and groups header) names them, "
        "believed only from DOCBOT_TRUSTED_PROXIES and removed from anyone else's requests.",
    )
    proxy_user_header: str = Field(
        "Remote-User",
        validation_alias=AliasChoices("DOCBOT_PROXY_USER_HEADER", "DOCBOT_PROXY_USER_HEADERS"),
        description="The one header the proxy names the signed-in reader in; the proxy must set it on every request "
        "(no other header is ever read for a name).",
    )
    proxy_groups_header: str = Field(
        "Remote-Groups",
        validation_alias=AliasChoices("DOCBOT_PROXY_GROUPS_HEADER", "DOCBOT_PROXY_GROUPS_HEADERS"),
        description="The one header the proxy lists the reader's groups in (comma-separated groups); the proxy must "
        "set it on every request, empty for none.",
    )
    proxy_role: Literal["reader", "editor", "admin"] = Field(
        "reader",
        description="The role of a reader the proxy signs in who has no DOCBOT_USERS account of that name (one who "
        "has gets that account's role).",
    )
    grants_cache_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds a server keeps the grants it read before reading them again: how soon a change made "
        "with docbot access applies.",
    )

    _split = field_validator(
        "users",
        "api_keys",
        "embed_origins",
        "trusted_proxies",
        "allowed_hosts",
        mode="before",
    )(_split_list)

    @field_validator("proxy_user_header", "proxy_groups_header")
    @classmethod
    def _one_header(cls, name: str) -> str:
        """One header name (letters, digits, hyphens): a list would let a header the proxy never writes speak."""
        name = name.strip()
        if not _HEADER.fullmatch(name):
            raise ValueError(
                "one header name of letters, digits and hyphens (the one the proxy overwrites on every request), "
                "not a list"
            )
        return name

    @field_validator("default_collection")
    @classmethod
    def _collection_name(cls, name: str) -> str:
        from index.collections import check_name
        from index.errors import CollectionError

        try:
            return check_name(name)
        except CollectionError:
            raise ValueError("a collection name: 1 to 40 lowercase letters, digits, - and _ (e.g. hr)") from None

    @field_validator("users")
    @classmethod
    def _user_password_pairs(cls, users: list[str]) -> list[str]:
        for entry in users:
            name, colon, password = entry.partition(":")
            if not colon or not name.strip() or not password:
                raise ValueError(f"user:password[:role] entries, and {name.strip() or '(empty)'!r} is not one")
        return users

    @field_validator("api_keys")
    @classmethod
    def _sendable_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        """A key travels as ``Authorization: Bearer <key>``: one with white space in it could never be sent."""
        for number, key in enumerate(keys, 1):
            if any(char.isspace() for char in key.get_secret_value()):
                raise ValueError(f"keys without spaces (sent as Authorization: Bearer <key>); key {number} has one")
        return keys

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        cleaned = [origin.rstrip("/") for origin in origins]
        bad = [origin for origin in cleaned if not _ORIGIN.fullmatch(origin)]
        if bad:
            raise ValueError(
                "origins like https://wiki.example.com (scheme, host, optional port, no path), "
                f"and {', '.join(bad)} is not one"
            )
        return cleaned

    @property
    def user_names(self) -> set[str]:
        """The names of the DOCBOT_USERS accounts."""
        return {entry.split(":", 1)[0].strip() for entry in self.users}

    @property
    def feedback_file(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    @property
    def uploads_dir(self) -> Path:
        return self.index_home / "uploads"
