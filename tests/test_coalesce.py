"""Questions from concurrent requests share one forward pass (index.coalesce), each caller getting its own row."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.coalesce import Coalescer


class Model:
    """Stands in for the embedding model in these unit tests: a text's vector is its length and first letter code;
    the first batch can be held open to let callers queue behind it, and a text "boom" fails its batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.started.set()
        self.release.wait(10)
        if "boom" in texts:
            raise RuntimeError("the model failed")
        return np.array([[len(t), ord(t[0]) if t else 0] for t in texts], dtype=np.float32)


def test_a_lone_caller_is_computed_at_once_on_its_own() -> None:
    model = Model()
    coalesce = Coalescer(model.encode, limit=8)
    assert coalesce("abc").tolist() == [[3.0, 97.0]]
    assert coalesce("z").tolist() == [[1.0, 122.0]]
    assert model.batches == [["abc"], ["z"]]


def _queue_behind_a_running_batch(model: Model, coalesce: Coalescer, texts: list[str]) -> dict[str, object]:
    """Start a first call and hold its batch open; ask ``texts`` from threads meanwhile, then let everything run;
    each text → its result or its error."""
    results: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            results[text] = coalesce(text).tolist()
        except RuntimeError as exc:
            results[text] = exc

    model.release.clear()
    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert model.started.wait(10)
    with ThreadPoolExecutor(len(texts)) as pool:
        for text in texts:
            pool.submit(ask, text)
        while len(coalesce._waiting) < len(texts):  # every caller queued behind the held batch
            threading.Event().wait(0.01)
        model.release.set()
    first.join(10)
    return results


def test_callers_that_arrive_during_a_batch_share_the_next_one_each_with_its_own_row() -> None:
    model = Model()
    coalesce = Coalescer(model.encode, limit=8)
    texts = [f"{letter}{'x' * n}" for n, letter in enumerate("bcdef")]
    results = _queue_behind_a_running_batch(model, coalesce, texts)
    assert model.batches[0] == ["first"]
    assert sorted(model.batches[1]) == sorted(texts) and len(model.batches) == 2
    for n, text in enumerate(texts):
        assert results[text] == [[n + 1.0, float(ord(text[0]))]]
    assert results["first"] == [[5.0, 102.0]]
    assert not coalesce._busy and not coalesce._waiting  # idle again: the next caller computes at once


def test_a_batch_holds_at_most_the_limit() -> None:
    model = Model()
    coalesce = Coalescer(model.encode, limit=2)
    texts = ["a", "b", "c", "d", "e"]
    results = _queue_behind_a_running_batch(model, coalesce, texts)
    assert [len(batch) for batch in model.batches] == [1, 2, 2, 1]
    assert all(results[t] == [[1.0, float(ord(t))]] for t in texts)


def test_a_failed_batch_fails_its_callers_and_the_queue_moves_on() -> None:
    model = Model()
    coalesce = Coalescer(model.encode, limit=2)
    results = _queue_behind_a_running_batch(model, coalesce, ["boom", "b", "c"])
    failed = {t for t in ("boom", "b", "c") if isinstance(results[t], RuntimeError)}
    # Whatever shared "boom"'s batch failed with it; the other batch was computed normally.
    assert failed == next(set(batch) for batch in model.batches if "boom" in batch)
    assert all(results[t] == [[1.0, float(ord(t))]] for t in ("b", "c") if t not in failed)
    assert coalesce("ok").tolist() == [[2.0, 111.0]]


@pytest.mark.model
def test_concurrent_questions_get_the_vectors_they_get_alone() -> None:
    """The real model, asked from 8 threads at once: every question's vector is its lone vector (within the
    bfloat16 noise of sharing a padded batch), and some questions did share a batch."""
    from bot.config import Settings
    from index.embeddings import Embedder

    embedder = Embedder.from_settings(Settings())
    questions = [f"What did the {w} committee decide about item {n}?" for n, w in enumerate("abcdefgh" * 4)]
    alone = np.vstack([embedder.encode_queries([q]) for q in questions])
    batches: list[int] = []
    direct = embedder._encode_direct

    def counted(texts: list[str]) -> np.ndarray:
        batches.append(len(texts))
        return direct(texts)

    embedder._questions = Coalescer(counted, embedder.batch_size)
    with ThreadPoolExecutor(8) as pool:
        together = np.vstack(list(pool.map(lambda q: embedder.encode_queries([q]), questions)))
    assert together.shape == alone.shape == (len(questions), 384)
    assert float((together * alone).sum(axis=1).min()) > 0.9999
    assert sum(batches) == len(questions) and max(batches) > 1
