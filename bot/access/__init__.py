"""Who may do what, free of any web framework: identities and the policy (:mod:`bot.access.policy`), sign-in sessions
and the failed sign-in throttle, rate limits, whose a conversation or vote is, and what of a stored answer its caller
may still read. Imports ``bot/state``, ``bot/answer`` and ``bot/config``; nothing of ``bot/web``."""
