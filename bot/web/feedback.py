"""Thumbs up/down on answers, appended as one JSON object a line to ``settings.feedback_file``."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.answer.citations import Answer

Vote = Literal["up", "down", "cleared"]

_lock = threading.Lock()


def vote_of(liked: bool | str) -> Vote:
    """Gradio's like payload → a vote: True is up, False is down, anything else withdraws the vote."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return "cleared"


def feedback_record(
    answer: Answer, vote: Vote, user: str | None = None, when: datetime | None = None
) -> dict[str, Any]:
    return {
        "time": (when or datetime.now(UTC)).isoformat(timespec="seconds"),
        "vote": vote,
        "question": answer.question,
        "answer": answer.text,
        "citations": [
            {
                "number": c.number,
                "title": c.title,
                "source": c.source,
                "page": c.page,
                "quote": c.quote,
                "quote_start": c.quote_start,
                "quote_end": c.quote_end,
                "chunk_id": c.chunk_id,
            }
            for c in answer.citations
        ],
        "refused": answer.refused,
        "generator": answer.generator,
        "user": user,
    }


def record_feedback(path: Path, answer: Answer, vote: Vote, user: str | None = None) -> dict[str, Any]:
    """Append one vote; returns what was written."""
    record = feedback_record(answer, vote, user)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
    return record
