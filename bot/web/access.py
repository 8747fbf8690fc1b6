"""Who the caller is and what they may do: one identity model and one policy table for the whole app.

Roles are ordered reader < editor < admin. An identity is proven by a user's password (the page's login form, or
HTTP Basic on the API), by an API key (``Authorization: Bearer``, or typed into the login form's password box), or
by the page's session cookie once signed in; without any of these the caller gets ``anonymous_role`` (or nothing).
Every surface (the page's event handlers, ``/api``, ``/v1``, ``/docs``, ``/openapi.json``) asks :func:`allowed`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum

from pydantic import SecretStr

from bot.config import Settings
from bot.state.counters import WindowCounters
from bot.state.database import Database
from bot.web.auth_throttle import FailureThrottle


class Role(IntEnum):
    reader = 1
    editor = 2
    admin = 3


#: The least role each action needs. ``replace`` and ``remove`` also need ownership below admin (see allowed).
POLICY: dict[str, Role] = {
    "read": Role.reader,  # list documents, see sources, the API's description (/docs, /openapi.json)
    "ask": Role.reader,
    "vote": Role.reader,
    "upload": Role.editor,
    "replace": Role.editor,
    "remove": Role.editor,
}
OWNED_ACTIONS = frozenset({"replace", "remove"})
ANONYMOUS = "anonymous"
_ROLE_NAMES = ", ".join(role.name for role in Role)
#: Gradio's login cookies are ``access-token-<app id>`` and ``access-token-unsecure-<app id>``.
SESSION_COOKIE_PREFIX = "access-token-"


class AccessError(ValueError):
    """A settings problem with users, keys or the anonymous role: one line saying what to set."""


class BadCredentialsError(Exception):
    """Credentials were sent and are not valid (counted against the caller's address)."""


class ThrottledError(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins from this address; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS


def allowed(identity: Identity | None, action: str, owner: str | None = None) -> bool:
    """May ``identity`` do ``action`` (to a document uploaded by ``owner``; None = unknown or the CLI)?"""
    if identity is None or identity.role < POLICY[action]:
        return False
    if action in OWNED_ACTIONS and identity.role < Role.admin:
        return owner is not None and not identity.anonymous and owner == identity.name
    return True


def _role(text: str, setting: str, form: str) -> Role:
    try:
        return Role[text.strip().lower()]
    except KeyError:
        raise AccessError(f"{setting}: role {text.strip()!r} is not one of {_ROLE_NAMES} (entries: {form})") from None


_USER_FORM = "user:password or user:password:role"
_KEY_FORM = "a plain key (read-only) or name:key:role"


def parse_users(entries: Sequence[str]) -> dict[str, tuple[str, Role]]:
    """``user:password[:role]`` → {user: (password, role)}; without a role the first user is admin, later editors."""
    users: dict[str, tuple[str, Role]] = {}
    for entry in entries:
        parts = entry.split(":")
        name = parts[0].strip()
        if len(parts) < 2 or not name or not parts[1]:
            raise AccessError(f"DOCBOT_USERS entries look like {_USER_FORM}, not {name or '(empty)'!r}")
        if len(parts) > 2 and parts[-1].strip().lower() in Role.__members__:
            password, role = ":".join(parts[1:-1]), _role(parts[-1], "DOCBOT_USERS", _USER_FORM)
        else:
            password, role = ":".join(parts[1:]), Role.admin if not users else Role.editor
        users[name] = (password, role)
    return users


def parse_keys(entries: Sequence[SecretStr]) -> list[tuple[bytes, Identity]]:
    """Each key's SHA-256 digest with its identity; a plain key is the read-only ``key<N>`` (what an embed holds)."""
    keys: list[tuple[bytes, Identity]] = []
    for number, entry in enumerate(entries, 1):
        text = entry.get_secret_value()
        if ":" not in text:
            keys.append((_digest(text), Identity(f"key{number}", Role.reader)))
            continue
        parts = text.split(":")
        if len(parts) != 3 or not parts[0].strip() or not parts[1]:
            raise AccessError(f"DOCBOT_API_KEYS entry {number} is not {_KEY_FORM} (role: {_ROLE_NAMES})")
        keys.append((_digest(parts[1]), Identity(parts[0].strip(), _role(parts[2], "DOCBOT_API_KEYS", _KEY_FORM))))
    return keys


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def anonymous_role(settings: Settings) -> Role | None:
    """``anonymous_role`` as set, else none when anybody is configured and reader when nobody is."""
    if settings.anonymous_role is not None:
        return None if settings.anonymous_role == "none" else Role[settings.anonymous_role]
    return None if settings.users or settings.api_keys else Role.reader


def check_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address to anonymous callers unless that was asked for explicitly."""
    configured = bool(settings.users or settings.api_keys)
    if configured or is_loopback(settings.host) or settings.allow_anonymous_remote:
        return
    if anonymous_role(settings) is not None:
        raise AccessError(
            f"refusing to serve {settings.host} with no login: anyone who can reach it could use docbot; set "
            "DOCBOT_USERS or DOCBOT_API_KEYS, or DOCBOT_ALLOW_ANONYMOUS_REMOTE=true to accept it"
        )


@dataclass
class _Login:
    """Filled by the password check during one ``/login`` request (see :mod:`bot.web.access_gate`)."""

    identity: Identity | None = None


_LOGIN: ContextVar[_Login | None] = ContextVar("docbot_login", default=None)


@dataclass
class Access:
    users: dict[str, tuple[str, Role]]
    keys: list[tuple[bytes, Identity]]
    anonymous: Role | None
    throttle: FailureThrottle
    #: Page sessions: Gradio's login token → who signed in with it.
    sessions: dict[str, Identity] = field(default_factory=dict)
    #: Gradio's own token table once mounted: a token it forgot (log out) is no longer a session.
    live_tokens: Mapping[str, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, database: Database) -> Access:
        """The policy ``settings`` describe; failed sign-ins are counted in ``database`` (shared by replicas)."""
        users, keys = parse_users(settings.users), parse_keys(settings.api_keys)
        anonymous = anonymous_role(settings)
        if anonymous is None and not users and not keys:
            raise AccessError(
                "DOCBOT_ANONYMOUS_ROLE=none with no DOCBOT_USERS or DOCBOT_API_KEYS would lock everybody out: "
                "configure a user or key, or choose reader, editor or admin"
            )
        check_exposure(settings)
        counters = WindowCounters(database, "auth", settings.auth_failure_window_s)
        throttle = FailureThrottle(counters, settings.auth_failure_limit)
        return cls(users, keys, anonymous, throttle)

    @property
    def login_configured(self) -> bool:
        return bool(self.users or self.keys)

    # --- proofs ----------------------------------------------------------------------------------

    def by_key(self, key: str) -> Identity | None:
        given, found = _digest(key), None
        for digest, identity in self.keys:  # no early exit: the time taken says nothing about which key
            if hmac.compare_digest(given, digest):
                found = identity
        return found

    def by_password(self, username: str, password: str) -> Identity | None:
        """A user's password, or (any user name) an API key typed into the password box."""
        name = username.strip()
        expected, role = self.users.get(name, ("", Role.reader))
        if expected and hmac.compare_digest(expected.encode(), password.encode()):
            return Identity(name, role)
        return self.by_key(password)

    def password_check(self, username: str, password: str) -> bool:
        """Gradio's ``auth`` callable: also tells the gate which identity signed in."""
        identity = self.by_password(username, password)
        login = _LOGIN.get()
        if login is not None:
            login.identity = identity
        return identity is not None

    # --- a request's identity --------------------------------------------------------------------

    def identify(self, authorization: str | None, cookies: Mapping[str, str]) -> Identity | None:
        """Bearer key, Basic user (or key), the page's session cookie, else the anonymous role (or None).

        Raises BadCredentialsError when an ``Authorization`` header is present but proves nobody.
        """
        if authorization:
            identity = self._from_header(authorization)
            if identity is None:
                raise BadCredentialsError("the credentials are not valid")
            return identity
        for name, token in cookies.items():
            live = self.live_tokens is None or token in self.live_tokens
            if name.startswith(SESSION_COOKIE_PREFIX) and token in self.sessions and live:
                return self.sessions[token]
        return Identity(ANONYMOUS, self.anonymous) if self.anonymous is not None else None

    def _from_header(self, authorization: str) -> Identity | None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.by_key(value.strip())
        if scheme.lower() == "basic":
            try:
                username, colon, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.by_password(username, password) if colon else None
        return None

    def authenticate(self, address: str, authorization: str | None, cookies: Mapping[str, str]) -> Identity | None:
        """:meth:`identify`, throttled per address: failures count, and an address over the limit gets
        ThrottledError for every attempt with credentials until its window passes (a success does not reset it)."""
        if authorization:
            wait = self.throttle.retry_after(address)
            if wait:
                raise ThrottledError(wait)
        try:
            return self.identify(authorization, cookies)
        except BadCredentialsError:
            self.throttle.fail(address)
            raise

    def start_login(self) -> _Login:
        login = _Login()
        _LOGIN.set(login)
        return login

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value: the schemes this server accepts."""
        return "Bearer, Basic" if self.users else "Bearer"
