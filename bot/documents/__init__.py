"""Documents and uploads, free of any web framework: adding files and removing documents as the page does it
(:mod:`bot.documents.changes`), the indexed documents (listing, safe names, removal, the text around a passage), the
upload cache's ledger, staging, records and originals in the state database, the sweep of files nothing names any
more, and example questions drawn from the documents. Imports ``bot/access``, ``bot/state``, ``bot/answer``,
``bot/config`` and ``index/``; nothing of ``bot/web``."""
