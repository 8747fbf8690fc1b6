"""Who the caller is and what they may do: one identity model and one policy table for the whole app.

Roles are ordered reader < editor < admin. An identity is proven by a user's password (the page's login form, or
HTTP Basic on the API), by an API key (``Authorization: Bearer``, or typed into the login form's password box; a
settings key or a scoped key of :mod:`bot.state.grants`), by the wiki's reverse proxy (a user header, with groups,
believed only when ``proxy_auth`` is on and only from ``trusted_proxies``: :mod:`bot.web.edge` removes those headers
from anyone else), or by the page's session cookie once signed in; without any of these the caller gets
``anonymous_role`` (or nothing).

Per collection, while no grant exists at all the settings roles apply to every collection (reader reads, editor
writes, admin administers). Once any grant exists the grants decide: a settings admin is admin of every collection,
anybody else has what their grants (as user, group, key or ``everyone``) give them, and nothing elsewhere. A scoped
key opens its one collection with its one right, whatever else exists. Every surface (the page's event handlers,
``/api``, ``/v1``, ``/embed``, ``/docs``, ``/openapi.json``) asks :func:`allowed`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import IntEnum

from pydantic import SecretStr

from bot.access.auth_throttle import FailureThrottle
from bot.access.sessions import PageSessions
from bot.config import Settings
from bot.state.grants import EVERYONE, GrantStore, Right
from bot.state.stores import Stores


class Role(IntEnum):
    reader = 1
    editor = 2
    admin = 3


#: The least right on a collection each action needs. ``replace`` and ``remove`` also need ownership below admin.
POLICY: dict[str, Right] = {
    "read": Right.read,  # list documents, see sources, example questions, the API's description (/docs)
    "ask": Right.read,
    "vote": Right.read,
    "upload": Right.write,
    "replace": Right.write,
    "remove": Right.write,
    "grant": Right.admin,
}
#: What a settings role gives on every collection while no grant exists (and a settings admin always).
ROLE_RIGHT = {Role.reader: Right.read, Role.editor: Right.write, Role.admin: Right.admin}
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
    #: ``user`` (a password, a session, the wiki's proxy) or ``key`` (an API key).
    kind: str = "user"
    #: The wiki groups the proxy named.
    groups: frozenset[str] = frozenset()
    #: Per collection, what the grants give; None while no grant exists (the role applies everywhere). A scoped key
    #: carries its one collection here from the start.
    rights: Mapping[str, Right] | None = field(default=None, compare=False, hash=False)
    #: Named by the wiki's proxy (a ``user`` whose name docbot did not check itself).
    proxied: bool = False

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS

    @property
    def proven_as(self) -> str:
        """What proved this identity, with its name: ``user:<name>`` (a password or a page session signed in with
        one), ``proxy:<name>`` (the wiki's proxy), ``key:<name>`` (an API key, which anyone holding it shares),
        ``anonymous``. Conversation owners and rate-limit buckets are named by it, so a key named like a user, or a
        user name typed beside a key at sign-in, never stands for that user."""
        if self.anonymous:
            return ANONYMOUS
        if self.kind == "key":
            return f"key:{self.name}"
        return f"{'proxy' if self.proxied else 'user'}:{self.name}"

    def principals(self) -> list[str]:
        """Who grants to this identity may name: ``everyone``, its user or key, its groups."""
        if self.anonymous:
            return [EVERYONE]
        return [EVERYONE, f"{self.kind}:{self.name}", *(f"group:{group}" for group in sorted(self.groups))]


def right_on(identity: Identity, collection: str | None) -> Right | None:
    """``identity``'s right on ``collection`` (None: on the collection where it is strongest)."""
    if identity.rights is None:
        return ROLE_RIGHT[identity.role]
    if identity.role is Role.admin and identity.kind != "key":
        return Right.admin
    if collection is None:
        return max(identity.rights.values(), default=None)
    return identity.rights.get(collection)


def allowed(identity: Identity | None, action: str, collection: str | None = None, *, owner: str | None = None) -> bool:
    """May ``identity`` do ``action`` on ``collection`` (None: on some collection) to a document uploaded by
    ``owner`` (None = unknown or the CLI)?"""
    if identity is None:
        return False
    right = right_on(identity, collection)
    if right is None or right < POLICY[action]:
        return False
    if action in OWNED_ACTIONS and right < Right.admin:
        return owner is not None and not identity.anonymous and owner == identity.name
    return True


def readable_collections(identity: Identity | None, collections: Sequence[str]) -> list[str]:
    """The collections (of ``collections``, in that order) that ``identity`` may read: the one place that decides
    what a caller may read (the /v1 model list, the page's picker, every question)."""
    return [name for name in collections if allowed(identity, "read", name)]


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
            keys.append((_digest(text), Identity(f"key{number}", Role.reader, "key")))
            continue
        parts = text.split(":")
        if len(parts) != 3 or not parts[0].strip() or not parts[1]:
            raise AccessError(f"DOCBOT_API_KEYS entry {number} is not {_KEY_FORM} (role: {_ROLE_NAMES})")
        keys.append(
            (_digest(parts[1]), Identity(parts[0].strip(), _role(parts[2], "DOCBOT_API_KEYS", _KEY_FORM), "key"))
        )
    return keys


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class ProxyHeaders:
    """The one header the wiki's reverse proxy names the reader in and the one it lists their groups in (lower-cased
    names). Exactly these: a header the proxy does not set on every request could be sent by the reader."""

    user: str
    groups: str
    #: The role of a reader the proxy signs in who is not also a DOCBOT_USERS account.
    role: Role

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyHeaders | None:
        if not settings.proxy_auth:
            return None
        if not settings.trusted_proxies:
            raise AccessError(
                "DOCBOT_PROXY_AUTH=true needs DOCBOT_TRUSTED_PROXIES: the addresses of the wiki's reverse proxy, the "
                "only callers whose user headers are believed"
            )
        return cls(settings.proxy_user_header.lower(), settings.proxy_groups_header.lower(), Role[settings.proxy_role])

    def claim(self, headers: Mapping[str, str]) -> tuple[str, frozenset[str]] | None:
        """The user and groups in ``headers`` (a case-insensitive mapping), or None when the user header is missing or
        empty (a guest: no user, whatever else the request says)."""
        user = headers.get(self.user, "").strip()
        if not user:
            return None
        listed = headers.get(self.groups, "")
        return user, frozenset(group.strip() for group in listed.split(",") if group.strip())


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
    #: Page sessions: Gradio's login token → who signed in with it (bounded, expiring, following Gradio's log-outs).
    sessions: PageSessions[Identity] = field(default_factory=PageSessions)
    #: The wiki's proxy headers, when it signs readers in (DOCBOT_PROXY_AUTH).
    proxy: ProxyHeaders | None = None
    #: Grants per collection and scoped keys (None: no state database, so the settings roles alone).
    grants: GrantStore | None = None

    @classmethod
    def from_settings(cls, settings: Settings, state: Stores) -> Access:
        """The policy ``settings`` describe; failed sign-ins are counted in ``state``'s ``auth`` counters (shared
        by replicas), and the grants per collection and scoped keys are read from its grant store."""
        users, keys = parse_users(settings.users), parse_keys(settings.api_keys)
        clashing = sorted({identity.name for _, identity in keys} & set(users))
        if clashing:
            raise AccessError(
                f"DOCBOT_API_KEYS names a key like a user of DOCBOT_USERS ({', '.join(clashing)}): give each key a "
                "name of its own"
            )
        anonymous = anonymous_role(settings)
        proxy = ProxyHeaders.from_settings(settings)
        if anonymous is None and not users and not keys and proxy is None:
            raise AccessError(
                "DOCBOT_ANONYMOUS_ROLE=none with no DOCBOT_USERS or DOCBOT_API_KEYS would lock everybody out: "
                "configure a user or key, or choose reader, editor or admin"
            )
        check_exposure(settings)
        throttle = FailureThrottle(state.counters("auth"), settings.auth_failure_limit)
        sessions = PageSessions(settings.signin_tokens, settings.signin_token_ttl_s)
        return cls(users, keys, anonymous, throttle, sessions=sessions, proxy=proxy, grants=state.grants)

    @property
    def login_configured(self) -> bool:
        return bool(self.users or self.keys)

    # --- proofs ----------------------------------------------------------------------------------

    def by_key(self, key: str) -> Identity | None:
        """A DOCBOT_API_KEYS key, else a scoped key of the grant store (its one collection and right)."""
        given, found = _digest(key), None
        for digest, identity in self.keys:  # no early exit: the time taken says nothing about which key
            if hmac.compare_digest(given, digest):
                found = identity
        if found is None and self.grants is not None:
            scoped = self.grants.snapshot().key(given)
            if scoped is not None:
                found = Identity(scoped.name, Role.reader, "key", rights={scoped.collection: scoped.right})
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

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
        """Bearer key, Basic user (or key), the wiki proxy's user header, the page's session cookie, else the
        anonymous role (or None); with the rights the grants give it now.

        ``headers`` is the request's case-insensitive header mapping (proxy headers from an untrusted peer have been
        removed at the edge). Raises BadCredentialsError when an ``Authorization`` header proves nobody.
        """
        return self.with_rights(self._who(headers, cookies))

    def _who(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
        authorization = headers.get("authorization")
        if authorization:
            identity = self._from_header(authorization)
            if identity is None:
                raise BadCredentialsError("the credentials are not valid")
            return identity
        proxied = self._from_proxy(headers)
        if proxied is not None:
            return proxied
        for name, token in cookies.items():
            session = self.sessions.identity(token) if name.startswith(SESSION_COOKIE_PREFIX) else None
            if session is not None:
                return session
        return Identity(ANONYMOUS, self.anonymous) if self.anonymous is not None else None

    def _from_proxy(self, headers: Mapping[str, str]) -> Identity | None:
        """The reader the wiki's proxy names (with the role of a DOCBOT_USERS account of that name, if any)."""
        claim = self.proxy.claim(headers) if self.proxy is not None else None
        if self.proxy is None or claim is None:
            return None
        user, groups = claim
        configured = self.users.get(user)
        return Identity(user, configured[1] if configured else self.proxy.role, groups=groups, proxied=True)

    def with_rights(self, identity: Identity | None) -> Identity | None:
        """``identity`` with what the grants give it per collection (unchanged while no grant exists, and for a
        scoped key, which carries its own)."""
        if identity is None or identity.rights is not None or self.grants is None:
            return identity
        snapshot = self.grants.snapshot()
        if not snapshot.grants:
            return identity
        return replace(identity, rights=snapshot.rights(identity.principals()))

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

    def authenticate(self, address: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
        """:meth:`identify`, throttled per address: failures count, and an address over the limit gets
        ThrottledError for every attempt with credentials until its window passes (a success does not reset it)."""
        if headers.get("authorization"):
            wait = self.throttle.retry_after(address)
            if wait:
                raise ThrottledError(wait)
        try:
            return self.identify(headers, cookies)
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
