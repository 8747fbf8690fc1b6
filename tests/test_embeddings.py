"""The embedding model's precision setting, against the real bundled model."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from bot.config import Settings
from index.embeddings import Embedder, native_bfloat16, resolve_precision

TEXTS = [
    "The group claimed responsibility for the attack on the checkpoint near Samarra.",
    "Mosul fell in June 2014 after a short offensive.",
    "Oil revenue financed the organisation's administration.",
    "short",
]


def test_auto_follows_the_cpu() -> None:
    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"


def test_settings_refuse_an_unknown_precision() -> None:
    with pytest.raises(ValidationError, match="embed_precision"):
        Settings(embed_precision="int4")


@pytest.mark.model
def test_bfloat16_vectors_match_float32() -> None:
    exact = Embedder.from_settings(Settings(embed_precision="float32"))
    fast = Embedder.from_settings(Settings(embed_precision="bfloat16"))
    a, b = exact.encode(TEXTS), fast.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert float((a * b).sum(axis=1).min()) > 0.9999
    # The nearest neighbour of every text is the same under both precisions.
    assert ((a @ a.T).argsort(axis=1)[:, -2] == (b @ b.T).argsort(axis=1)[:, -2]).all()


@pytest.mark.model
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_one_text_gets_exactly_the_vector_sentence_transformers_gives(precision: str) -> None:
    """A question is embedded on its own, past SentenceTransformer.encode's per-call bookkeeping: the vector must be
    the very one encode() gives (so answers and rankings are unchanged), whatever the text."""
    import torch

    embedder = Embedder.from_settings(Settings(embed_precision=precision))
    odd = ["", "x", "Why? [1] ünïcode — ok", "word " * 400]  # empty, one letter, non-ASCII, past the 256-token cut
    for text in [*TEXTS, *odd]:
        mine = embedder.encode([text])
        assert mine.dtype == np.float32 and mine.shape == (1, 384)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            theirs = embedder._model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        assert np.array_equal(mine, np.asarray(theirs, dtype=np.float32)), text
