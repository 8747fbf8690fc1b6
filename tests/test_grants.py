"""Grants per collection and scoped keys (bot.state.grants) and the policy over them (bot.access.policy): the grant
store on SQLite, how settings roles map while no grant exists and after, scoped keys, and the wiki proxy's header
identity (believed only from a trusted proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Clock, access_over
from pydantic import SecretStr

from bot.access.policy import Access, AccessError, Identity, Role, allowed
from bot.access.policy import readable_collections as readable
from bot.config import Settings
from bot.state.database import Database
from bot.state.grants import EVERYONE, GrantError, GrantStore, Right, principal
from bot.web.edge import ForwardedHeaders


@pytest.fixture
def store(tmp_path: Path) -> GrantStore:
    return GrantStore(Database.open(None, tmp_path), cache_s=0)


def access_with(store: GrantStore, **settings: Any) -> Access:
    return access_over(Settings(grants_cache_s=0, **settings), store.database)


def test_grants_are_stored_replaced_listed_and_revoked(store: GrantStore) -> None:
    store.grant("hr", principal("group", "hr-team"), Right.read)
    store.grant("hr", principal("user", "alice"), Right.read)
    store.grant("hr", principal("user", "alice"), Right.write)  # replaces her read
    store.grant("eng", EVERYONE, Right.read)
    listed = [(g.collection, g.principal, g.right) for g in store.grants()]
    assert listed == [
        ("eng", "everyone", Right.read),
        ("hr", "group:hr-team", Right.read),
        ("hr", "user:alice", Right.write),
    ]
    assert [g.principal for g in store.grants("eng")] == ["everyone"]
    assert store.revoke("hr", "user:alice") and not store.revoke("hr", "user:alice")
    assert store.forget_collection("hr") == 1
    assert [g.collection for g in store.grants()] == ["eng"]
    # a second store on the same database (another server) sees the same grants
    other = GrantStore(Database.open(None, Path(str(store.database.engine.url.database)).parent), cache_s=0)
    assert [g.principal for g in other.grants()] == ["everyone"]


def test_bad_principals_and_names_get_one_line_errors() -> None:
    with pytest.raises(GrantError, match="user, group or key"):
        principal("team", "x")
    for bad in ("", "  ", "a\nb", "x" * 201):
        with pytest.raises(GrantError, match="1 to 200 printable"):
            principal("user", bad)


def test_a_change_is_seen_once_the_cache_time_has_passed(tmp_path: Path) -> None:
    clock = Clock(100.0)
    writer = GrantStore(Database.open(None, tmp_path), cache_s=0)
    server = GrantStore(Database.open(None, tmp_path), cache_s=1.0, clock=clock)
    assert server.snapshot().grants == ()
    writer.grant("hr", "user:alice", Right.read)
    clock.now += 0.5
    assert server.snapshot().grants == ()  # still the cached read
    clock.now += 0.6
    assert [g.principal for g in server.snapshot().grants] == ["user:alice"]


def test_without_grants_the_settings_roles_apply_to_every_collection(store: GrantStore) -> None:
    access = access_with(store, users=["ann:apw:admin", "ed:epw:editor", "rita:rpw:reader"])
    for name, role in (("ann", Role.admin), ("ed", Role.editor), ("rita", Role.reader)):
        identity = access.with_rights(Identity(name, role))
        assert identity is not None and identity.rights is None
        for collection in ("default", "hr"):
            assert allowed(identity, "ask", collection)
            assert allowed(identity, "upload", collection) == (role >= Role.editor)
            assert allowed(identity, "grant", collection) == (role is Role.admin)


def test_with_grants_only_granted_collections_open_and_a_settings_admin_opens_all(store: GrantStore) -> None:
    store.grant("hr", "group:hr-team", Right.read)
    store.grant("hr", "user:ed", Right.write)
    store.grant("default", EVERYONE, Right.read)
    access = access_with(store, users=["ann:apw:admin", "ed:epw:editor"], anonymous_role="reader")
    ann, ed = access.with_rights(Identity("ann", Role.admin)), access.with_rights(Identity("ed", Role.editor))
    hr_reader = access.with_rights(Identity("bob", Role.reader, groups=frozenset({"hr-team"})))
    outsider = access.with_rights(Identity("eve", Role.editor, groups=frozenset({"eng"})))
    guest = access.with_rights(Identity("anonymous", Role.reader))
    collections = ["default", "hr", "finance"]
    assert readable(ann, collections) == collections
    assert allowed(ann, "grant", "finance")
    assert readable(hr_reader, collections) == ["default", "hr"]
    assert not allowed(hr_reader, "upload", "hr")
    assert readable(outsider, collections) == ["default"]  # an editor role writes nowhere without a grant
    assert not allowed(outsider, "upload", "default")
    assert readable(guest, collections) == ["default"]  # "everyone" includes anonymous callers
    assert allowed(ed, "upload", "hr") and not allowed(ed, "upload", "default")
    assert allowed(ed, "remove", "hr", owner="ed") and not allowed(ed, "remove", "hr", owner="ann")
    assert allowed(ed, "ask") and not allowed(Identity("x", Role.reader, rights={}), "ask")  # "on some collection"
    # a key of DOCBOT_API_KEYS is a principal of its own: key:<name>
    keyed = access_with(store, api_keys=[SecretStr("ops:s3cr3t:reader")])
    store.grant("finance", "key:ops", Right.read)
    key = keyed.identify({"authorization": "Bearer s3cr3t"}, {})
    assert readable(key, collections) == ["default", "finance"]


def test_a_scoped_key_reads_its_one_collection_only(store: GrantStore) -> None:
    secret = store.create_key("embed-hr", "hr")
    assert secret.startswith("dbk_") and len(secret) > 40
    with pytest.raises(GrantError, match="exists"):
        store.create_key("embed-hr", "eng")
    with pytest.raises(GrantError, match="scoped key"):
        store.create_key("admin-key", "hr", Right.admin)
    access = access_with(store, api_keys=[SecretStr("other")])
    identity = access.identify({"authorization": f"Bearer {secret}"}, {})
    assert identity == Identity("embed-hr", Role.reader, "key")
    assert readable(identity, ["default", "hr", "eng"]) == ["hr"]  # no grant exists: still its one collection
    assert not allowed(identity, "upload", "hr")
    store.grant("eng", EVERYONE, Right.read)
    assert readable(access.identify({"authorization": f"Bearer {secret}"}, {}), ["hr", "eng"]) == ["hr"]
    assert store.scoped_keys()[0].name == "embed-hr"
    assert store.delete_key("embed-hr")
    with pytest.raises(Exception, match="not valid"):
        access.identify({"authorization": f"Bearer {secret}"}, {})


def test_the_proxy_headers_sign_a_reader_in_with_groups(store: GrantStore) -> None:
    with pytest.raises(AccessError, match="DOCBOT_TRUSTED_PROXIES"):
        access_with(store, proxy_auth=True)
    access = access_with(
        store, proxy_auth=True, trusted_proxies=["10.0.0.5"], users=["wikiadmin:pw:admin"], anonymous_role="none"
    )
    headers = {"remote-user": " alice ", "remote-groups": "hr-team, finance ,"}
    alice = access.identify(headers, {})
    assert alice == Identity("alice", Role.reader, groups=frozenset({"hr-team", "finance"}), proxied=True)
    assert access.identify({"remote-user": "wikiadmin"}, {}) == Identity("wikiadmin", Role.admin, proxied=True)
    assert access.identify({"remote-user": "  "}, {}) is None  # an empty header names nobody
    # issue 27, finding 1: only the configured headers speak; a header the proxy left out is not a fall-through
    assert access.identify({"remote-user": "", "x-forwarded-user": "wikiadmin"}, {}) is None
    only_forged_groups = {"remote-user": "bob", "x-forwarded-groups": "finance-team"}
    assert access.identify(only_forged_groups, {}) == Identity("bob", Role.reader, proxied=True)
    store.grant("hr", "group:hr-team", Right.read)
    assert readable(access.identify(headers, {}), ["hr", "eng"]) == ["hr"]
    # the same headers mean nothing when the proxy does not sign readers in
    assert access_with(store, api_keys=[SecretStr("k")]).identify(headers, {}) is None


def test_the_proxy_headers_are_one_header_each_and_named_by_the_operator(store: GrantStore) -> None:
    from bot.settings_errors import SettingsError, load_settings

    access = access_with(
        store, proxy_auth=True, trusted_proxies=["10.0.0.5"], proxy_user_header="X-Wiki-User", anonymous_role="none"
    )
    assert access.identify({"x-wiki-user": "carol"}, {}) == Identity("carol", Role.reader, proxied=True)
    assert access.identify({"remote-user": "carol"}, {}) is None
    with pytest.raises(SettingsError, match=r"DOCBOT_PROXY_USER_HEADER: .* not a list"):
        load_settings(proxy_user_header="Remote-User,X-Forwarded-User")
    with pytest.raises(SettingsError, match="DOCBOT_PROXY_GROUPS_HEADER"):
        load_settings(proxy_groups_header="Remote_Groups")  # nginx drops headers with underscores


def test_the_edge_removes_proxy_identity_headers_from_anyone_but_a_trusted_proxy() -> None:
    from ipaddress import ip_network

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    edge = ForwardedHeaders(app, [ip_network("10.0.0.5/32")], ["Remote-User", "Remote-Groups"])
    headers = [(b"remote-user", b"admin"), (b"remote-groups", b"hr-team"), (b"accept", b"*/*")]
    scope = {"type": "http", "headers": headers}
    direct = edge.resolved({**scope, "client": ("192.0.2.9", 5000)})
    assert direct["headers"] == [(b"accept", b"*/*")]
    proxied = edge.resolved({**scope, "client": ("10.0.0.5", 5000)})
    assert (b"remote-user", b"admin") in proxied["headers"] and (b"remote-groups", b"hr-team") in proxied["headers"]


def test_docbot_access_grants_revokes_lists_and_makes_a_scoped_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    env = {"DOCBOT_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["access", *args], env=env)

    assert "no grants" in run("list").output
    first = run("grant", "read", "--collection", "hr", "--group", "hr-team")
    assert first.exit_code == 0 and "first grant" in first.output
    assert "first grant" not in run("grant", "write", "-c", "hr", "--user", "alice").output
    created = run("key", "create", "--collection", "hr", "--read-only", "--name", "embed-hr")
    secret = created.output.splitlines()[0]
    listed = run("list", "--collection", "hr").output.splitlines()
    assert listed == ["hr\tgroup:hr-team\tread", "hr\tuser:alice\twrite", "hr\tscoped-key:embed-hr\tread"]
    assert secret not in run("list").output  # printed once, stored as a digest only
    # what the CLI wrote is what a server's policy reads
    access = access_over(Settings(data_dir=tmp_path, api_keys=[SecretStr("k")]), Database.open(None, tmp_path))
    assert readable(access.identify({"authorization": f"Bearer {secret}"}, {}), ["default", "hr"]) == ["hr"]
    for bad, message in (
        (["grant", "owner", "-c", "hr", "--user", "x"], "read, write or admin"),
        (["grant", "read", "-c", "hr", "--user", "x", "--everyone"], "exactly one holder"),
        (["revoke", "-c", "hr", "--user", "nobody"], "has no grant"),
        (["key", "delete", "nope"], "no scoped key"),
        (["grant", "read", "-c", "hr", "--user", "a\tb"], "printable"),
    ):
        result = run(*bad)
        assert result.exit_code == 2 and message in result.output, (bad, result.output)
    # issue 27, finding 3: a key never takes a user's name (settings keys are refused at start the same way)
    env["DOCBOT_USERS"] = "alice:alice-pw:admin"
    clash = run("key", "create", "-c", "hr", "--name", "alice")
    assert clash.exit_code == 2 and "is a user's name" in clash.output, clash.output
    with pytest.raises(AccessError, match="names a key like a user"):
        access_with_settings = Settings(
            data_dir=tmp_path, users=["alice:pw:admin"], api_keys=[SecretStr("alice:k:reader")]
        )
        access_over(access_with_settings, Database.open(None, tmp_path))
    assert run("revoke", "-c", "hr", "--user", "alice").exit_code == 0
    assert run("key", "delete", "embed-hr").exit_code == 0
    assert run("list").output.splitlines() == ["hr\tgroup:hr-team\tread"]
