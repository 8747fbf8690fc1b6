"""What a reader is shown, built without a web framework: the chat page's HTML of answers, sources and documents
(:mod:`bot.view.render`), and evidence views: where a cited sentence sits in its document (:mod:`bot.view.evidence`;
PDF pages: :mod:`bot.view.pdf`)."""
