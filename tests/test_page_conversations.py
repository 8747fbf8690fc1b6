"""The chat page's conversations in the state database, through the page's own handlers (fast tier).

Two ``ChatPage`` objects over one index, each with its own ``Database`` on one SQLite file, stand for two replicas:
what the browser keeps (its random id and the conversation it shows) brings the conversation back on either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from app import Services, State, open_database
from bot.access.owners import conversation_owner
from bot.access.policy import Access, Identity, Role
from bot.answer.chat import Bot
from bot.documents.upload_inbox import UploadInbox
from bot.state.feedback import FeedbackStore
from bot.web.page import ChatPage
from bot.web.page.history import Kept

QUESTION = "What did coalition forces resume because of the growing ISIS force?"
FOLLOW_UP = "Which warplanes carried out attacks against them last month?"
#: In-process events carry no credentials: the anonymous visitor (a reader by default).
ANONYMOUS = gr.Request()


@pytest.fixture(scope="module")
def replicas(services: Services) -> tuple[ChatPage, ChatPage]:
    settings = services.settings
    bot = Bot(settings, services.retriever, None)
    inbox = UploadInbox(settings.data_dir / "gradio", settings.upload_cache_bytes)
    pages = []
    for state in (services.state, State(settings, open_database(settings))):  # two openers of one state.db
        pages.append(ChatPage(bot, settings, services.indexer, inbox, Access.from_settings(settings, state), state))
    return pages[0], pages[1]


def _ask(page: ChatPage, question: str, turns: list[Any], saved: object) -> tuple[Any, ...]:
    *_, final = page.respond(question, turns, saved, ANONYMOUS)
    return final


def test_a_conversation_comes_back_after_a_reload_on_another_replica(replicas: tuple[ChatPage, ChatPage]) -> None:
    one, two = replicas
    # a first visit: a random browser id, no history; the question box and its button are enabled then
    saved, turns, messages, _, past, question, ask = one.restore({}, ANONYMOUS)
    assert question.interactive is True and ask.interactive is True
    browser = Kept.of(saved).browser
    assert turns == [] and messages == [] and past.visible is False and Kept.of(saved).conversation is None

    _, _, _, turns, saved, past = _ask(one, QUESTION, turns, saved)
    kept = Kept.of(saved)
    assert kept.browser == browser and kept.conversation is not None
    assert [value for _, value in past.choices] == [kept.conversation] and past.value == kept.conversation

    saved_after_reload, restored, messages, sources, past, *_ = two.restore(saved, ANONYMOUS)  # reload, other replica
    assert Kept.of(saved_after_reload) == kept
    assert [t.answer.text for t in restored] == [t.answer.text for t in turns]
    assert restored[0].answer.citations == turns[0].answer.citations and "air strikes" in restored[0].answer.text
    assert len(messages) == 2 and "src-card" in sources and len(restored[0].contexts) == len(turns[0].contexts)

    _, _, _, turns, saved, _ = _ask(two, FOLLOW_UP, restored, saved_after_reload)  # continued there, with history
    assert Kept.of(saved).conversation == kept.conversation
    stored = one.conversations.answers(kept.conversation, f"browser:{browser}")
    assert [a.question for a in stored] == [QUESTION, FOLLOW_UP]
    assert "American and British warplanes" in " ".join(c.passage for c in stored[1].citations)


def test_another_browser_sees_nothing_of_it(replicas: tuple[ChatPage, ChatPage]) -> None:
    one, two = replicas
    saved, *_ = one.restore({}, ANONYMOUS)
    _, _, _, _, saved, _ = _ask(one, QUESTION, [], saved)
    conversation = Kept.of(saved).conversation
    stranger = {"browser": "S" * 22, "conversation": conversation}  # knows the id, is not its browser
    shown, turns, messages, _, past, *_ = two.restore(stranger, ANONYMOUS)
    assert turns == [] and messages == [] and past.visible is False
    assert Kept.of(shown) == Kept("S" * 22, None)  # shown a new conversation instead
    for forged in ({"browser": "x"}, {"browser": 7, "conversation": ["a"]}, "not a dict", None):
        kept = Kept.of(forged)
        assert len(kept.browser) >= 16 and kept.conversation is None  # a fresh random id, never the forged value


def test_new_conversation_and_opening_a_past_one(replicas: tuple[ChatPage, ChatPage]) -> None:
    one, two = replicas
    saved, *_ = one.restore({}, ANONYMOUS)
    _, _, _, _, saved, _ = _ask(one, QUESTION, [], saved)
    first = Kept.of(saved).conversation
    turns, messages, _, question, fresh, _ = one.new_conversation(saved)
    assert turns == [] and messages == [] and question == "" and Kept.of(fresh) == Kept.of(saved).showing(None)
    _, _, _, _, saved, past = _ask(one, "Who is Con Coughlin?", [], fresh)
    second = Kept.of(saved).conversation
    assert second != first and [value for _, value in past.choices] == [second, first]  # the newest first
    assert past.choices[0][0].startswith("Who is Con Coughlin? · ")

    shown, turns, _, _, past = two.open(first, saved, ANONYMOUS)  # chosen in the list, on the other replica
    assert Kept.of(shown).conversation == first and [t.answer.question for t in turns] == [QUESTION]
    assert past.value == first


def test_votes_go_to_the_database(replicas: tuple[ChatPage, ChatPage], tmp_path: Path) -> None:
    one, two = replicas
    _, _, _, turns, _, _ = _ask(one, QUESTION, [], {})
    before = len(list(FeedbackStore(two.conversations.database).records()))
    up, down = (gr.LikeData(None, {"index": 1, "value": "", "liked": liked}) for liked in (True, False))
    browser = {"browser": "B" * 22, "conversation": None}
    for _ in range(20):  # one anonymous visitor clicking again and again (issue 27, finding 10)
        one.feedback(turns, browser, up, ANONYMOUS)
    records = list(FeedbackStore(two.conversations.database).records())
    assert len(records) == before + 1
    assert records[-1]["vote"] == "up" and records[-1]["question"] == QUESTION and records[-1]["user"] is None
    one.feedback(turns, browser, down, ANONYMOUS)  # their changed mind replaces their vote
    one.feedback(turns, {"browser": "C" * 22, "conversation": None}, up, ANONYMOUS)  # another visitor's is theirs
    votes = [r["vote"] for r in FeedbackStore(two.conversations.database).records()][before:]
    assert sorted(votes) == ["down", "up"]


def test_whose_conversation() -> None:
    assert conversation_owner(Identity("ann", Role.editor)) == "user:ann"
    assert conversation_owner(Identity("ann", Role.editor), "B" * 22) == "user:ann"  # signed in: the browser id is moot
    anonymous = Identity("anonymous", Role.reader)
    assert anonymous.anonymous
    assert conversation_owner(anonymous, "B" * 22) == "browser:" + "B" * 22
    assert conversation_owner(anonymous) == "anonymous"
    # issue 27, finding 3: owners say what proved them; a key (shared, an embed's public) owns nothing listable
    key = Identity("ann", Role.reader, "key")
    assert conversation_owner(key, "B" * 22) == "browser:" + "B" * 22
    assert conversation_owner(key) == "key:ann"
    assert conversation_owner(Identity("ann", Role.reader, proxied=True), "B" * 22) == "proxy:ann"


def test_rate_buckets_are_named_by_what_proved_the_caller() -> None:
    from bot.access.rate_limits import rate_bucket

    assert rate_bucket(Identity("ann", Role.editor), "10.0.0.7") == "user:ann"
    assert rate_bucket(Identity("ann", Role.reader, proxied=True), "10.0.0.7") == "proxy:ann"
    assert rate_bucket(Identity("embed", Role.reader, "key"), "10.0.0.7") == "key:embed@ip:10.0.0.7"
    assert rate_bucket(Identity("anonymous", Role.reader), "10.0.0.7") == rate_bucket(None, "10.0.0.7") == "ip:10.0.0.7"
