"""What goes wrong while answering, for the edges (CLI, JSON API, ``/v1``, page) to translate in one place.

The index side's errors (the store down, a model mismatch, a failed run) are in :mod:`index.errors`.
"""

from __future__ import annotations


class QuestionError(Exception):
    """The question cannot be answered as asked (it is empty); the message says what is wrong with it."""


class BackendError(Exception):
    """The model backend is missing, failed or timed out; during a turn the answer falls back to the extractive one."""
