"""Keeping the server answering, free of any web framework: the vector store's health probe behind ``/api/health``.
Imports nothing of ``bot/``."""
