"""The access policy in-process: parsing users and keys, the action table, identities, the failure throttle."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from helpers import Clock, access_over
from pydantic import SecretStr

from bot.access.auth_throttle import FailureThrottle
from bot.access.policy import (
    POLICY,
    AccessError,
    BadCredentialsError,
    Identity,
    Role,
    ThrottledError,
    allowed,
    anonymous_role,
    check_exposure,
    parse_keys,
    parse_users,
)
from bot.config import Settings
from bot.state.counters import WindowCounters
from bot.state.database import Database
from bot.web.access_gate import session_token

READER, EDITOR, ADMIN = Identity("rita", Role.reader), Identity("ed", Role.editor), Identity("ann", Role.admin)
GUEST = Identity("anonymous", Role.editor)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth(authorization: str) -> dict[str, str]:
    return {"authorization": authorization}


def test_the_policy_table_row_by_row() -> None:
    table = {
        action: [allowed(who, action) for who in (None, READER, EDITOR, ADMIN)]
        for action in ("read", "ask", "vote", "upload", "replace", "remove", "grant")
    }
    assert table == {
        "read": [False, True, True, True],
        "ask": [False, True, True, True],
        "vote": [False, True, True, True],
        "upload": [False, False, True, True],
        "replace": [False, False, False, True],  # nobody's document (or the CLI's): the admin only
        "remove": [False, False, False, True],
        "grant": [False, False, False, True],
    }
    assert set(POLICY) == set(table)


def test_editors_replace_and_remove_only_what_they_uploaded() -> None:
    for action in ("replace", "remove"):
        assert allowed(EDITOR, action, owner="ed")
        assert not allowed(EDITOR, action, owner="ann")
        assert not allowed(READER, action, owner="rita")  # owning it does not lift a reader
        assert allowed(ADMIN, action, owner="ed")
        assert not allowed(GUEST, action, owner="anonymous")  # anonymous callers own nothing


def test_users_first_is_admin_later_ones_editors_unless_a_role_is_given() -> None:
    users = parse_users(["ann:s3cret:with:colons", "bob:pw", "rita:pw2:reader", "max:x:ADMIN"])
    assert users == {
        "ann": ("s3cret:with:colons", Role.admin),
        "bob": ("pw", Role.editor),
        "rita": ("pw2", Role.reader),
        "max": ("x", Role.admin),
    }
    for bad in (["nopassword"], [":pw"], ["user:"]):
        with pytest.raises(AccessError, match=r"DOCBOT_USERS entries look like user:password or user:password:role"):
            parse_users(bad)


def test_keys_plain_is_read_only_named_keys_carry_a_role() -> None:
    keys = parse_keys([SecretStr("embed-key"), SecretStr("ops:s3cr3t:editor")])
    assert [identity for _, identity in keys] == [
        Identity("key1", Role.reader, "key"),
        Identity("ops", Role.editor, "key"),
    ]
    for bad in ("ops:s3cr3t", "ops:s3cr3t:boss", ":s3cr3t:reader", "a:b:c:d"):
        with pytest.raises(AccessError, match="DOCBOT_API_KEYS") as error:
            parse_keys([SecretStr(bad)])
        assert "s3cr3t" not in str(error.value)  # a key is never echoed
        assert "\n" not in str(error.value)


def test_anonymous_role_defaults_and_the_non_loopback_refusal(state_db: Database) -> None:
    assert anonymous_role(Settings()) is Role.reader
    assert anonymous_role(Settings(users=["ann:pw"])) is None
    assert anonymous_role(Settings(api_keys=[SecretStr("k")])) is None
    assert anonymous_role(Settings(users=["ann:pw"], anonymous_role="reader")) is Role.reader
    assert anonymous_role(Settings(anonymous_role="admin")) is Role.admin

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_exposure(Settings(host=host))
    check_exposure(Settings(host="0.0.0.0", users=["ann:pw"]))
    check_exposure(Settings(host="0.0.0.0", allow_anonymous_remote=True))
    with pytest.raises(AccessError) as refused:
        check_exposure(Settings(host="0.0.0.0"))
    message = str(refused.value)
    assert "\n" not in message
    for setting in ("DOCBOT_USERS", "DOCBOT_API_KEYS", "DOCBOT_ALLOW_ANONYMOUS_REMOTE=true"):
        assert setting in message
    with pytest.raises(AccessError, match="lock everybody out"):
        access_over(Settings(anonymous_role="none"), state_db)


def test_identities_from_keys_basic_and_the_login_form(state_db: Database) -> None:
    access = access_over(
        Settings(users=["ann:apw", "ed:epw"], api_keys=[SecretStr("embed-key"), SecretStr("ops:s3cr3t:editor")]),
        state_db,
    )
    assert access.identify(auth("Bearer embed-key"), {}) == Identity("key1", Role.reader, "key")
    assert access.identify(auth("bearer s3cr3t"), {}) == Identity("ops", Role.editor, "key")
    assert access.identify(auth(basic("ann", "apw")), {}) == Identity("ann", Role.admin)
    assert access.identify(auth(basic("anyone", "embed-key")), {}) == Identity("key1", Role.reader, "key")
    assert access.identify({}, {}) is None  # users or keys configured: anonymous callers are nobody
    for wrong in ("Bearer apw", basic("ann", "epw"), basic("ann", ""), "Basic !!!", "Digest x", "Bearer "):
        with pytest.raises(BadCredentialsError):
            access.identify(auth(wrong), {})
    # the login form: a key in the password box proves the key's identity, whatever user name was typed
    assert access.by_password("ann", "embed-key") == Identity("key1", Role.reader, "key")
    assert access.by_password("ed", "epw") == Identity("ed", Role.editor)
    assert access.by_password("ed", "apw") is None


def test_a_page_session_is_the_identity_that_signed_in_until_gradio_forgets_the_token(state_db: Database) -> None:
    access = access_over(Settings(users=["ann:apw"], api_keys=[SecretStr("embed-key")]), state_db)
    login = access.start_login()
    assert access.password_check("ann", "embed-key")  # typed as "ann", proven by the read-only key
    assert login.identity == Identity("key1", Role.reader, "key")
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"set-cookie", b"access-token-abc=TOKEN1; HttpOnly; Path=/; SameSite=none; Secure"),
        ],
    }
    assert session_token(start) == "TOKEN1"
    gradio_tokens = {"TOKEN1": "ann"}
    access.sessions.follow(gradio_tokens)
    access.sessions.add("TOKEN1", login.identity)
    assert access.identify({}, {"access-token-unsecure-abc": "TOKEN1"}) == Identity("key1", Role.reader, "key")
    assert access.identify({}, {"access-token-abc": "forged"}) is None
    gradio_tokens.clear()  # logged out
    assert access.identify({}, {"access-token-abc": "TOKEN1"}) is None


def test_failures_lock_an_address_out_for_the_window_and_a_success_does_not_reset_it(
    state_db: Database, tmp_path: Path
) -> None:
    clock = Clock()
    clock.now = 1200.0  # a window of 300 s starts here
    throttle = FailureThrottle(WindowCounters(state_db, "auth", 300, clock=clock), 3)
    other_replica = Database.open(None, tmp_path / "state")
    twin = FailureThrottle(WindowCounters(other_replica, "auth", 300, clock=clock), 3)
    for replica in (throttle, twin, throttle):  # failures on either replica count for both
        assert replica.retry_after("10.0.0.1") == 0
        replica.fail("10.0.0.1")
        clock.now += 10
    assert twin.retry_after("10.0.0.1") == 270  # locked out until the window ends at 300 s
    assert throttle.retry_after("10.0.0.2") == 0  # another address is not affected
    clock.now += 271
    assert throttle.retry_after("10.0.0.1") == 0  # the failures fade as the next window goes on
    other_replica.close()

    access = access_over(Settings(api_keys=[SecretStr("good-key")], auth_failure_limit=2), state_db)
    for _ in range(2):
        with pytest.raises(BadCredentialsError):
            access.authenticate("10.0.0.9", auth("Bearer bad"), {})
    with pytest.raises(ThrottledError) as throttled:
        access.authenticate("10.0.0.9", auth("Bearer good-key"), {})  # even the right key waits
    assert 1 <= throttled.value.retry_after <= 300
    assert access.authenticate("10.0.0.8", auth("Bearer good-key"), {}) == Identity("key1", Role.reader, "key")
