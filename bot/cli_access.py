"""``docbot access``: grants per collection and scoped keys (see :mod:`bot.state.grants`). Parsing and printing only.

A running server sees a change within DOCBOT_GRANTS_CACHE_S seconds: no restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.settings_errors import load_settings

if TYPE_CHECKING:
    from bot.state.grants import GrantStore

access_app = typer.Typer(
    no_args_is_help=True,
    help="Who may read, write or administer each collection: access grant, revoke, list; access key create, delete.",
)
key_app = typer.Typer(no_args_is_help=True, help="API keys scoped to one collection (what an embed carries).")
access_app.add_typer(key_app, name="key")

CollectionOption = Annotated[str, typer.Option("--collection", "-c", help="The collection the grant is on.")]
UserOption = Annotated[str | None, typer.Option("--user", help="A user (DOCBOT_USERS, or signed in by the proxy).")]
GroupOption = Annotated[str | None, typer.Option("--group", help="A group the wiki's proxy names.")]
KeyOption = Annotated[str | None, typer.Option("--key", help="A named key of DOCBOT_API_KEYS.")]
EveryoneOption = Annotated[bool, typer.Option("--everyone", help="Every caller let in at all, anonymous included.")]

IN_FORCE = (
    "note: this is the first grant, so grants now decide for every collection: a collection nobody was granted "
    "is open to settings admins only (grant --everyone read to keep one open)"
)


def grant_store() -> GrantStore:
    """The grant store of the command's state (``app.admin_state``: read uncached)."""
    from app import admin_state

    return admin_state(load_settings()).grants


def _holder(user: str | None, group: str | None, key: str | None, everyone: bool) -> str:
    from bot.state.grants import EVERYONE, GrantError, principal

    given = [(kind, name) for kind, name in (("user", user), ("group", group), ("key", key)) if name is not None]
    if len(given) + everyone != 1:
        raise GrantError("name exactly one holder: --user NAME, --group NAME, --key NAME or --everyone")
    return EVERYONE if everyone else principal(*given[0])


@access_app.command()
def grant(
    right: Annotated[str, typer.Argument(help="read (ask, see sources), write (upload, replace, remove) or admin.")],
    collection: CollectionOption,
    user: UserOption = None,
    group: GroupOption = None,
    key: KeyOption = None,
    everyone: EveryoneOption = False,
) -> None:
    """Give a user, group, key or everyone a right on a collection (replacing the right they had there)."""
    from bot.state.grants import GrantError, Right

    if right.strip().lower() not in Right.__members__:
        raise GrantError(f"the right is read, write or admin, not {right!r}")
    holder = _holder(user, group, key, everyone)
    store = grant_store()
    first = not store.grants()
    store.grant(collection, holder, Right[right.strip().lower()])
    typer.echo(f"granted {right.strip().lower()} on {collection} to {holder}")
    if first:
        typer.echo(IN_FORCE, err=True)


@access_app.command()
def revoke(
    collection: CollectionOption,
    user: UserOption = None,
    group: GroupOption = None,
    key: KeyOption = None,
    everyone: EveryoneOption = False,
) -> None:
    """Take a holder's right on a collection away."""
    from bot.state.grants import GrantError

    holder = _holder(user, group, key, everyone)
    if not grant_store().revoke(collection, holder):
        raise GrantError(f"{holder} has no grant on {collection}: docbot access list shows the grants")
    typer.echo(f"revoked {holder} on {collection}")


@access_app.command("list")
def list_grants(
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only this collection.")] = None,
) -> None:
    """The grants and scoped keys (of one collection), one a line."""
    store = grant_store()
    grants, keys = store.grants(collection), [k for k in store.scoped_keys() if collection in (None, k.collection)]
    if not grants and not keys:
        typer.echo("no grants: the settings roles apply to every collection (reader reads, editor writes)")
        return
    for found in grants:
        typer.echo(f"{found.collection}\t{found.principal}\t{found.right.name}")
    for scoped in keys:
        typer.echo(f"{scoped.collection}\tscoped-key:{scoped.name}\t{scoped.right.name}")


@key_app.command("create")
def key_create(
    collection: Annotated[str, typer.Option("--collection", "-c", help="The one collection the key opens.")],
    name: Annotated[str | None, typer.Option(help="The key's name (default: <collection>-<random>).")] = None,
    read_only: Annotated[bool, typer.Option("--read-only/--write", help="Read only, or also upload.")] = True,
) -> None:
    """Make a key that opens one collection; it is printed once (only its digest is stored)."""
    import secrets

    from bot.state.grants import GrantError, Right

    chosen = name or f"{collection}-{secrets.token_hex(3)}"
    if chosen in load_settings().user_names:
        raise GrantError(f"{chosen!r} is a user's name (DOCBOT_USERS): give the key a name of its own")
    secret = grant_store().create_key(chosen, collection, Right.read if read_only else Right.write)
    typer.echo(secret)
    right = "read only" if read_only else "read and write"
    typer.echo(f"key {chosen}: {collection}, {right}; shown this once: store it now", err=True)


@key_app.command("delete")
def key_delete(name: Annotated[str, typer.Argument(help="The scoped key's name (docbot access list).")]) -> None:
    """Delete a scoped key: it stops working within DOCBOT_GRANTS_CACHE_S seconds."""
    from bot.state.grants import GrantError

    if not grant_store().delete_key(name):
        raise GrantError(f"no scoped key named {name!r}: docbot access list shows them")
    typer.echo(f"deleted key {name}")
