"""Caches a caller can fill hold to their budget (issue 27, finding 4; finding 10's sign-in tokens), fast tier:
filter masks asked for with 10,000 distinct values stay within their byte budget and still give the right chunks,
and page sign-ins are held to a count (least recently used out first, from Gradio's token table too) and a
lifetime."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from helpers import Clock, access_over
from pydantic import SecretStr

from bot.access.policy import Identity, Role
from bot.access.sessions import PageSessions
from bot.config import Settings
from bot.state.database import Database
from index.filters import Filter, FilterTable
from index.lru import BoundedLRU

CHUNKS = 5_000
BUDGET = 256 * 1024
ASKS = 10_000
WARM_UP = 1_000


def corpus() -> tuple[list[str], dict[str, dict[str, object]]]:
    """``CHUNKS`` chunks of 100 files in 10 folders, each folder's files tagged with its name."""
    ids = [f"c{row}" for row in range(CHUNKS)]
    metadata: dict[str, dict[str, object]] = {}
    for row, chunk_id in enumerate(ids):
        folder, name = f"team{row % 10}", f"doc{row % 100}"
        metadata[chunk_id] = {
            "source": f"{folder}/{name}.md",
            "type": "md" if row % 2 else "pdf",
            "folders": [f"{folder}/"],
            "tags": [folder],
        }
    return ids, metadata


def expected(metadata: dict[str, dict[str, object]], ids: list[str], where: Filter) -> np.ndarray:
    """The mask ``where`` should give, chunk by chunk."""

    def keeps(meta: dict[str, object]) -> bool:
        folders, tags = meta["folders"], meta["tags"]
        assert isinstance(folders, list) and isinstance(tags, list)
        by_path = not where.paths or any(f"{p}/" in folders or meta["source"] == p for p in where.paths)
        by_type = not where.types or meta["type"] in where.types
        return by_path and by_type and (not where.tags or tags[0] in where.tags)

    return np.array([keeps(metadata[chunk_id]) for chunk_id in ids])


def test_ten_thousand_distinct_filters_keep_the_masks_within_their_budget_and_right() -> None:
    ids, metadata = corpus()
    table = FilterTable(ids, metadata, BUDGET)
    real = [Filter.parse(text) for text in ("path=team3/", "type=pdf,tag=team7", "path=team1/doc21.md")]
    wanted = [expected(metadata, ids, where) for where in real]

    def ask(number: int) -> None:
        # values never asked before and one real folder: 10 masks of 5 KB each an ask, all kept 500 MB
        where = Filter.of({"path": [f"random/{number}-{value}" for value in range(4)] + [f"team{number % 10}/"]})
        assert table.mask(where).sum() == CHUNKS // 10
        assert table.cached_bytes <= BUDGET
        if number % 1000 == 0:  # a real filter, its masks long since dropped, is still right
            for where, mask in zip(real, wanted, strict=True):
                assert np.array_equal(table.mask(where), mask)

    for number in range(WARM_UP):  # also fills the interpreter's free lists, which tracemalloc counts as held
        ask(number)
    tracemalloc.start()
    try:
        for number in range(WARM_UP, ASKS):
            ask(number)
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # at most the masks kept now (each made while traced), the cache's own entries and the interpreter's free lists
    # of small objects (about 100 KB); all masks kept would be 450 MB
    assert grown <= BUDGET + 256 * 1024, grown


def test_a_filter_cache_of_zero_keeps_no_mask_and_still_filters() -> None:
    ids, metadata = corpus()
    table = FilterTable(ids, metadata, 0)
    where = Filter.parse("path=team2/,type=md")
    assert np.array_equal(table.mask(where), expected(metadata, ids, where))
    assert table.cached_bytes == 0


def test_the_lru_drops_the_least_recently_used_and_keeps_nothing_heavier_than_its_budget() -> None:
    dropped: list[str] = []
    cache: BoundedLRU[str, bytes] = BoundedLRU(10, len, lambda key, _: dropped.append(key))
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recently used
    cache.put("c", b"1234")
    assert (cache.get("b"), dropped, cache.held) == (None, ["b"], 8)
    cache.put("a", b"12")  # replacing counts the new weight only
    assert cache.held == 6
    cache.put("huge", b"x" * 11)
    assert (cache.get("huge"), cache.held, len(cache)) == (None, 6, 2)


def test_sign_ins_beyond_the_count_sign_the_least_recently_used_out_of_both_tables() -> None:
    sessions = PageSessions(limit=3, lifetime_s=3600, clock=Clock())
    gradio: dict[str, str] = {}
    sessions.follow(gradio)
    for number in range(5):
        token = f"T{number}"
        gradio[token] = "ann"  # Gradio's /login keeps its token, then the gate remembers who signed in
        sessions.add(token, Identity(f"user{number}", Role.reader))
        if number == 2:
            assert sessions.identity("T0") == Identity("user0", Role.reader)  # T0 used: T1 is now the oldest
    assert sessions.identity("T1") is None and sessions.identity("T2") is None
    assert [sessions.identity(t) for t in ("T0", "T3", "T4")] == [Identity(f"user{n}", Role.reader) for n in (0, 3, 4)]
    assert sorted(gradio) == ["T0", "T3", "T4"]  # Gradio's own table is held to the count too


def test_an_expired_sign_in_is_refused_and_forgotten() -> None:
    clock = Clock()
    sessions = PageSessions(limit=10, lifetime_s=600, clock=clock)
    gradio = {"OLD": "ann"}
    sessions.follow(gradio)
    sessions.add("OLD", Identity("ann", Role.admin))
    clock.now += 599
    assert sessions.identity("OLD") == Identity("ann", Role.admin)  # use does not extend it
    gradio["NEW"] = "ann"
    sessions.add("NEW", Identity("ann", Role.admin))
    clock.now += 1
    assert sessions.identity("OLD") is None
    assert "OLD" not in gradio
    assert sessions.identity("NEW") == Identity("ann", Role.admin)


def test_the_settings_bound_the_page_sessions_a_request_is_identified_by(state_db: Database) -> None:
    settings = Settings(users=["ann:apw"], api_keys=[SecretStr("embed-key")], signin_tokens=2)
    access = access_over(settings, state_db)
    assert access.sessions.lifetime_s == settings.signin_token_ttl_s == 12 * 3600
    for number in range(3):
        access.sessions.add(f"T{number}", Identity("key1", Role.reader, "key"))
    cookie = "access-token-abc"
    assert access.identify({}, {cookie: "T0"}) is None
    assert access.identify({}, {cookie: "T2"}) == Identity("key1", Role.reader, "key")


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_sign_in_count_or_lifetime_below_one_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Settings(signin_tokens=value)
    with pytest.raises(ValueError):
        Settings(signin_token_ttl_s=value)
