"""What goes wrong while showing a document: one error, its message the one-line reason for the person viewing."""

from __future__ import annotations


class ViewError(Exception):
    """A page or its boxes cannot be shown (a damaged or hostile PDF, a page that is not there, over budget)."""


class ViewBusy(Exception):
    """Every slot for reading a document again is taken: the view is refused at once, to be asked again shortly."""
