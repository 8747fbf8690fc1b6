"""What the chat page keeps in the browser to find its conversation again (a reload, a restart, another replica).

The browser keeps, in its local storage (``gr.BrowserState``, under a fixed key so every replica and restart
reads the same entry), a random browser id and the id of the conversation it shows. Neither is trusted: the
conversation is read from the database only for its owner (:func:`bot.access.owners.conversation_owner`: the
signed-in user, else ``browser:<that random id>``), so a made-up id opens nothing. The browser-side encryption
Gradio applies to this storage is not a secret (its key is sent with the page); the browser id is the anonymous
visitor's only key, like a session cookie.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import gradio as gr

from bot.state.conversations import ConversationSummary

#: The local-storage entry (fixed: Gradio's default is random per process, which a restart or a replica loses).
STORAGE_KEY = "docbot-conversation"
#: Gradio obfuscates BrowserState with this; it is sent to every browser, so it protects nothing and need not vary.
STORAGE_SECRET = "docbot-browser-state"
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: Characters of a conversation's title shown in the list.
LABEL_CHARS = 60


@dataclass(frozen=True)
class Kept:
    """What one browser keeps: its random id and the conversation it shows (None: a new one)."""

    browser: str
    conversation: str | None = None

    @classmethod
    def of(cls, value: object) -> Kept:
        """The browser's value, checked: a missing or malformed browser id gets a fresh random one."""
        saved = value if isinstance(value, dict) else {}
        browser, conversation = saved.get("browser"), saved.get("conversation")
        return cls(
            browser if isinstance(browser, str) and _ID.fullmatch(browser) else secrets.token_urlsafe(16),
            conversation if isinstance(conversation, str) and _ID.fullmatch(conversation) else None,
        )

    def showing(self, conversation: str | None) -> Kept:
        return Kept(self.browser, conversation)

    def value(self) -> dict[str, Any]:
        return {"browser": self.browser, "conversation": self.conversation}


def browser_state() -> gr.BrowserState:
    return gr.BrowserState({}, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)


def past_list(summaries: list[ConversationSummary], showing: str | None) -> Any:
    """The past-conversations list: newest first, the one shown selected; hidden while there is none."""
    choices = [(_label(s), s.id) for s in summaries]
    selected = showing if any(s.id == showing for s in summaries) else None
    return gr.Radio(choices=choices, value=selected, visible=bool(choices))


def _label(summary: ConversationSummary) -> str:
    title = summary.title if len(summary.title) <= LABEL_CHARS else summary.title[: LABEL_CHARS - 1] + "…"
    return f"{title} · {summary.updated[:10]}"
