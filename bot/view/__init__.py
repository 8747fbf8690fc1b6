"""Evidence views: where a cited sentence sits in its document (PDF pages: :mod:`bot.view.pdf`)."""
