"""Request and response bodies of the HTTP API; FastAPI turns them into the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from bot.answer.citations import Answer, Citation, Related
from bot.documents.indexed import IndexedDocument
from index.filters import Filter, FilterError

SEED_QUESTION = "What did coalition forces resume because of the growing ISIS force?"

#: The model name docbot answers to on the OpenAI-compatible endpoint.
MODEL_ID = "docbot"


class Problem(BaseModel):
    """An error from /api (FastAPI's shape)."""

    detail: str


class StoreProblem(Problem):
    """A 503 from /api: the vector store cannot be reached."""

    store: str = Field(description="The Chroma server's URL, or the local Chroma directory.")
    fix: str = Field(description="What the operator does about it.")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="What the user asks.", examples=[SEED_QUESTION])
    history: list[tuple[str, str]] = Field(
        default_factory=list,
        max_length=50,
        description="Earlier turns of the conversation as [question, answer] pairs, oldest first (not with "
        "conversation_id).",
    )
    conversation_id: str | None = Field(
        None,
        max_length=64,
        description="Continue this stored conversation of yours (its history is read from the server, and this turn "
        "is added to it); leave it out to start a new one (see keep).",
    )
    keep: bool = Field(
        False,
        description="Store this turn in a new conversation on the server and return its conversation_id, to continue "
        "it later by that id (not with history). Without keep or conversation_id nothing is stored and "
        "conversation_id comes back null.",
    )
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: the server's setting).")
    collection: str | list[str] | None = Field(
        None,
        description="The collection to ask, or a list of collections searched as one ranking (default: the server's "
        "DOCBOT_DEFAULT_COLLECTION). A collection the caller may not read is answered like one that does not exist.",
        examples=["hr", ["hr", "eng"]],
    )
    where: dict[str, str | list[str]] | None = Field(
        None,
        description="Only passages that pass this filter: keys path (a folder prefix or a file), type (pdf, md...), "
        "tag, after and before (dates like 2025-01-31); a list is any of its values.",
        examples=[{"type": "pdf", "tag": ["hr", "policy"], "after": "2025-01-01"}],
    )

    def condition(self) -> Filter | None:
        """``where`` as a filter (a 422 names what is wrong with it)."""
        if not self.where:
            return None
        try:
            return Filter.of(self.where)
        except FilterError as exc:
            raise HTTPException(422, f"where: {exc}") from exc


class AskResponse(BaseModel):
    answer: str = Field(description="The answer text; each sentence ends with its [n] citation markers.")
    citations: list[Citation] = Field(description="The passages the [n] markers point to, numbered from 1.")
    refused: bool = Field(description="True when the documents do not cover the question.")
    timings: dict[str, float] = Field(description="retrieval_ms, generation_ms and total_ms.")
    generator: str = Field(description="What wrote the answer: extractive, local or openai.")
    notice: str | None = Field(description="A note for the user, e.g. that the model failed and a fallback answered.")
    query: str = Field(description="The standalone query that was searched (follow-ups are rewritten).")
    related: list[Related] = Field(
        default_factory=list,
        description="When the documents are on the subject but do not give the answer: the closest passages, "
        "for reading (not the answer, not cited).",
    )
    conversation_id: str | None = Field(
        None,
        description="The stored conversation this turn was added to: send it to continue the conversation. Null when "
        "nothing was stored (the request had neither keep nor conversation_id).",
    )

    @classmethod
    def of(cls, answer: Answer, conversation_id: str | None = None) -> AskResponse:
        return cls(
            answer=answer.text,
            citations=answer.citations,
            refused=answer.refused,
            timings=answer.timings,
            generator=answer.generator,
            notice=answer.notice,
            query=answer.query,
            related=answer.related,
            conversation_id=conversation_id,
        )


class DocumentInfo(BaseModel):
    key: str = Field(description="An opaque, stable handle for the file.")
    source: str = Field(description="Path of the file relative to the folder it was indexed from.")
    title: str
    pages: int | None = Field(description="PDF pages with text; null for other files.")
    chunks: int = Field(description="Passages the file was cut into.")
    indexed_at: str | None = Field(description="When it was uploaded through the chat page (ISO time), else null.")
    uploaded: bool = Field(description="True for files uploaded through the chat page.")
    owner: str | None = Field(
        None, description="Who uploaded it through the chat page (null: login was off, or indexed by docbot index)."
    )

    @classmethod
    def of(cls, document: IndexedDocument) -> DocumentInfo:
        return cls(
            key=document.key,
            source=document.source,
            title=document.title,
            pages=document.pages or None,
            chunks=document.chunks,
            indexed_at=document.indexed_at,
            uploaded=document.uploaded,
            owner=document.owner,
        )


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


# --- OpenAI-compatible ------------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type == "text" and part.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI request; other OpenAI parameters (temperature, max_tokens...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        MODEL_ID,
        description="docbot/NAME asks the collection NAME (see /v1/models); docbot, or any other name, the server's "
        "default collection.",
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The last message must be the user's question; earlier user/assistant pairs are the history; "
        "system messages are ignored.",
        examples=[[{"role": "user", "content": SEED_QUESTION}]],
    )
    stream: bool = Field(False, description="Stream chat.completion.chunk objects as server-sent events.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer, then a blank line, 'Sources:' and one numbered line a source.")


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[ChatChoice]
    citations: list[Citation] = Field(description="docbot's addition: the numbered sources, structured.")
    refused: bool = Field(description="docbot's addition: true when the documents do not cover the question.")


class ModelCard(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "docbot"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
