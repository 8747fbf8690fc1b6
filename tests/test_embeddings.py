"""The embedding model's precision setting, against the real bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bot.config import Settings
from index.embeddings import FEW_TEXTS, Embedder, native_bfloat16, resolve_precision
from index.errors import EmbeddingModelError

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
    """With query_engine torch, a question is embedded on its own, past SentenceTransformer.encode's per-call
    bookkeeping: the vector must be the very one encode() gives (so answers and rankings are unchanged)."""
    import torch

    embedder = Embedder.from_settings(Settings(embed_precision=precision, query_engine="torch"))
    odd = ["", "x", "Why? [1] ünïcode — ok", "word " * 400]  # empty, one letter, non-ASCII, past the 256-token cut
    for text in [*TEXTS, *odd]:
        mine = embedder.encode([text])
        assert mine.dtype == np.float32 and mine.shape == (1, 384)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            theirs = embedder._model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        assert np.array_equal(mine, np.asarray(theirs, dtype=np.float32)), text


ODD = ["", "x", "Why? [1] ünïcode — ok", "word " * 400]  # empty, one letter, non-ASCII, past the 256-token cut


@pytest.mark.model
def test_onnx_questions_get_the_vectors_sentence_transformers_gives(tmp_path: Path) -> None:
    """The default query engine: ONNX Runtime runs a graph exported from the loaded model into model_cache, once;
    its question vectors are sentence-transformers' within float32 rounding, alone and a few at once (a question's
    parts); a large batch (indexing) is sentence-transformers' own."""
    settings = Settings(embed_precision="float32", model_cache=tmp_path)
    embedder = Embedder.from_settings(settings)
    assert embedder.query_engine == "onnx"
    (export,) = tmp_path.glob("*.onnx")
    theirs = embedder._model.encode([*TEXTS, *ODD], normalize_embeddings=True, convert_to_numpy=True)
    mine = np.vstack([embedder.encode_queries([text]) for text in [*TEXTS, *ODD]])
    assert mine.dtype == np.float32 and mine.shape == theirs.shape
    np.testing.assert_allclose(mine, theirs, atol=1e-5)
    np.testing.assert_allclose(embedder.encode_queries(TEXTS), theirs[: len(TEXTS)], atol=1e-5)
    np.testing.assert_allclose(embedder.encode(TEXTS), theirs[: len(TEXTS)], atol=1e-5)  # a small file's texts
    many = [f"{text} ({n})" for n in range(3) for text in TEXTS]
    assert len(many) > FEW_TEXTS
    batch = embedder._model.encode(many, normalize_embeddings=True, convert_to_numpy=True)
    assert np.array_equal(embedder.encode(many), batch)
    # The export is fused (one Attention kernel a layer), and the loaded model keeps its own attention for indexing.
    import onnx

    assert sum(node.op_type == "Attention" for node in onnx.load(str(export)).graph.node) == 6
    torch_only = Embedder.from_settings(Settings(embed_precision="float32", query_engine="torch"))
    attention = embedder._model[0].auto_model.config._attn_implementation
    assert attention == torch_only._model[0].auto_model.config._attn_implementation
    # A second embedder (another process, a restart) reuses the export.
    written = export.stat().st_mtime_ns
    assert Embedder.from_settings(settings).query_engine == "onnx"
    assert [p.stat().st_mtime_ns for p in tmp_path.glob("*.onnx")] == [written]
    assert not list(tmp_path.glob(".export-*"))  # nothing half-written left beside it


@pytest.mark.model
def test_int8_questions_stay_near_float32_and_documents_are_never_int8(tmp_path: Path) -> None:
    """query_precision int8: questions run a quantized copy of the export (made once), their vectors within
    INT8_MIN_COSINE of float32, each text alone (the same vector asked alone or with others); documents' texts,
    even a few, keep the float32 vectors."""
    import onnx

    from index.onnx_model import INT8_MIN_COSINE

    settings = Settings(embed_precision="float32", model_cache=tmp_path, query_precision="int8")
    embedder = Embedder.from_settings(settings)
    assert (embedder.query_engine, embedder.query_precision) == ("onnx", "int8")
    (quantized,) = tmp_path.glob("*-int8.onnx")
    operators = {node.op_type for node in onnx.load(str(quantized)).graph.node}
    assert "DynamicQuantizeMatMul" in operators or "MatMulInteger" in operators, operators
    texts = [*TEXTS, *ODD]
    exact = embedder._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    alone = np.vstack([embedder.encode_queries([text]) for text in texts])
    together = embedder.encode_queries(texts)  # a question's parts, probes: FEW_TEXTS at a time
    cosine = (alone * exact).sum(axis=1)
    assert cosine.min() >= INT8_MIN_COSINE and not np.allclose(alone, exact, atol=1e-4), cosine
    np.testing.assert_allclose(together, alone, atol=1e-6)  # each alone: no vector depends on its batchmates
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.encode(TEXTS), exact[: len(TEXTS)], atol=1e-5)  # a small file's texts
    written = quantized.stat().st_mtime_ns  # a restart reuses it
    assert Embedder.from_settings(settings).query_precision == "int8" and quantized.stat().st_mtime_ns == written
    assert not list(tmp_path.glob(".quantize-*"))


@pytest.mark.model
def test_a_damaged_onnx_export_is_an_error_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    Embedder.from_settings(Settings(model_cache=tmp_path))
    (export,) = tmp_path.glob("*.onnx")
    export.write_bytes(b"not a graph")
    with pytest.raises(EmbeddingModelError, match=r"ONNX embedding model at .*\.onnx.*delete it.*QUERY_ENGINE=torch"):
        Embedder.from_settings(Settings(model_cache=tmp_path))
    export.unlink()  # as the message says: the next start exports it again
    assert Embedder.from_settings(Settings(model_cache=tmp_path)).query_engine == "onnx"


@pytest.mark.model
def test_a_model_of_another_shape_keeps_torch_for_questions(tmp_path: Path) -> None:
    """Only transformer + mean pooling + normalisation is exported; CLS pooling, say, is left to torch."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    from index.onnx_model import onnx_encoder

    loaded = Embedder.from_settings(Settings(query_engine="torch"))._model
    cls_pooled = SentenceTransformer(modules=[loaded[0], Pooling(384, pooling_mode="cls")], device="cpu")
    assert onnx_encoder(cls_pooled, "cls-pooled", tmp_path) is None
    assert not list(tmp_path.iterdir())
