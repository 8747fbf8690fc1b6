"""The one OpenAI-compatible chat client docbot builds: for the ``openai`` generator and the local model's process."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel


def openai_chat(
    base_url: str, model: str, api_key: str | None, max_tokens: int, temperature: float, timeout_s: float
) -> BaseChatModel:
    """LangChain's client for an OpenAI-compatible chat endpoint, with docbot's limits."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        timeout=timeout_s,
        max_retries=0,
        temperature=temperature,
        # ``max_tokens``, not ``max_completion_tokens``: llama.cpp's server, older vLLM and Ollama ignore the
        # latter and would write until the context is full.
        extra_body={"max_tokens": max_tokens},
    )
