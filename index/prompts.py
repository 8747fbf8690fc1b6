"""An embedding model's query and passage prompts, and the name an index records for the model with them.

e5 and bge models are trained with a prompt before each text ("query: " before a question, "passage: " before a
document's text); vectors made without them, or with others, do not match the ones made with them. So the prompts
are part of what the index records (:func:`identity`): an index made with one pair is never searched with another.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prompts:
    """The texts put before a question and before a document's text ("" = none)."""

    query: str = ""
    passage: str = ""

    @property
    def empty(self) -> bool:
        return not self.query and not self.passage

    def queries(self, texts: list[str]) -> list[str]:
        return [self.query + text for text in texts] if self.query else texts

    def passages(self, texts: list[str]) -> list[str]:
        return [self.passage + text for text in texts] if self.passage else texts

    def identity(self, model: str) -> str:
        """The name an index made by ``model`` with these prompts records: the model's name alone without prompts
        (what every index made before prompts existed records), else with both prompts."""
        if self.empty:
            return model
        return f"{model} (query prompt {self.query!r}, passage prompt {self.passage!r})"
