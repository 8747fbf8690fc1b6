"""Thumbs up/down from the chat page: Gradio's like payload as a vote (stored by :mod:`bot.state.feedback`)."""

from __future__ import annotations

from bot.state.feedback import Vote


def vote_of(liked: bool | str) -> Vote:
    """Gradio's like payload → a vote: True is up, False is down, anything else withdraws the vote."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return "cleared"
