"""Benchmarks: indexing and answering speed against the raw model and the usual LangChain recipe.

``python -m bench`` (``make bench``) writes ``bench/results/*.json`` and ``docs/benchmarks.md``.
"""
