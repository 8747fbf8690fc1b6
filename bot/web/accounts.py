"""Optional login for the page: ``settings.users`` holds ``user:password`` pairs; the first user is the admin."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from bot.config import Settings

Check = Callable[[str, str], bool]


def parse_users(users: Sequence[str]) -> dict[str, str]:
    """``["ann:pw", ...]`` → ``{"ann": "pw"}`` (in order). A malformed entry is a settings error."""
    accounts: dict[str, str] = {}
    for entry in users:
        name, colon, password = entry.partition(":")
        if not colon or not name.strip() or not password:
            raise ValueError(f"DOCBOT_USERS entries look like user:password, not {name.strip() or '(empty)'!r}")
        accounts[name.strip()] = password
    return accounts


def password_check(settings: Settings) -> Check | None:
    """Gradio's ``auth`` callable, or None when login is off (no users configured)."""
    if not settings.users:
        return None
    accounts = parse_users(settings.users)

    def check(username: str, password: str) -> bool:
        expected = accounts.get(username.strip())
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    return check


def is_admin(settings: Settings, username: str | None) -> bool:
    """Anyone is when login is off; only the first configured user when it is on."""
    if not settings.users:
        return True
    return username == next(iter(parse_users(settings.users)))
