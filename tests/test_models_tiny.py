"""Local models beyond the bundled one (issue 29), offline, with tiny randomly initialised BERTs the tests build and
save themselves (no hub, no download): a sentence-transformers embedder with e5-style prompts and a
CrossEncoder reranker, each from settings to a cited answer. Slow tier: they load PyTorch and build models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE
from helpers import BEES, FERRY, LEAVE, indexed, three_subjects

from app import build
from bot.config import Settings
from index.embeddings import Embedder
from index.errors import IndexMismatchError, RerankerModelError
from index.hashing import HashingEmbedder
from index.prompts import Prompts
from index.rerank import CrossEncoderReranker, rerank, reranker_from_settings
from index.types import Passage

pytestmark = pytest.mark.slow

WORDS = (
    "the a of and to in at from up with their get can is it when does how many what morning ferry leaves leave north "
    "pier seven returns island noon honeybee queen lay two thousand eggs day early summer employees twenty five days "
    "annual year booked manager query passage"
).split()
E5 = Prompts("query: ", "passage: ")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny BERT (1 layer, 32 wide, a vocabulary of the tests' 49 words) saved as a sentence-transformers embedder
    (mean pooling) and as a one-output CrossEncoder, each in a folder of its own."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-models")
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", *WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert tokenizer.tokenize("query: the ferry") == ["query", ":", "the", "ferry"]
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 256,
    }
    torch.manual_seed(29)
    bert = root / "bert"
    BertModel(BertConfig(**shape)).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    embedder = root / "embedder"
    modules = [models.Transformer(str(bert)), models.Pooling(32, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(embedder))
    cross = root / "cross-encoder"
    BertForSequenceClassification(BertConfig(**shape, num_labels=1)).save_pretrained(cross)
    tokenizer.save_pretrained(cross)
    return {"embedder": embedder, "cross-encoder": cross}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return three_subjects(tmp_path / "docs")


# --- a local embedder with prompts ------------------------------------------------------------------------------


def test_a_local_model_puts_its_prompts_before_questions_and_passages(tiny: dict[str, Path]) -> None:
    from sentence_transformers import SentenceTransformer

    path = str(tiny["embedder"])
    settings = Settings(embedding_model=path, embedding_query_prompt="query: ", embedding_passage_prompt="passage: ")
    embedder = Embedder.from_settings(settings)
    assert embedder.name == f"{path} (query prompt 'query: ', passage prompt 'passage: ')"
    assert embedder.query_engine == "torch"  # ONNX's direct path takes no prompt
    raw = SentenceTransformer(path, device="cpu", local_files_only=True)
    text = ["when does the ferry leave"]
    for ours, prompt in ((embedder.encode(text), "passage: "), (embedder.encode_queries(text), "query: ")):
        expected = raw.encode([prompt + text[0]], normalize_embeddings=True)
        np.testing.assert_allclose(ours, expected, atol=1e-3)  # bfloat16 where native
    assert not np.allclose(embedder.encode(text), embedder.encode_queries(text), atol=1e-3)
    plain = Embedder(path, query_engine="torch")
    assert plain.name == path and not np.allclose(plain.encode(text), embedder.encode(text), atol=1e-3)


def test_settings_to_a_cited_answer_with_a_local_model_and_prompts(
    tiny: dict[str, Path], tmp_path: Path, docs: Path
) -> None:
    e5 = {"embedding_query_prompt": "query: ", "embedding_passage_prompt": "passage: "}
    # A random model has no meaning: every question is covered, the answerer's own checks pick the sentence.
    values = {"embedding_model": str(tiny["embedder"]), "coverage": "floor", "relevance_floor": -1.0, **e5}
    services = indexed(build(clean_settings(tmp_path / "data", **values)), docs)
    answer = services.bot.ask("How many eggs can a honeybee queen lay in a day?")
    assert not answer.refused and answer.citations, answer
    assert "two thousand eggs" in answer.citations[0].quote
    with pytest.raises(IndexMismatchError, match=r"passage prompt 'passage: '.*docbot index --rebuild"):
        build(clean_settings(tmp_path / "data", **{**values, "embedding_passage_prompt": ""}))


# --- a local cross-encoder --------------------------------------------------------------------------------------


def test_a_cross_encoder_orders_by_its_scores(tiny: dict[str, Path]) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(str(tiny["cross-encoder"]))
    texts = [FERRY, BEES, LEAVE]
    query = "when does the ferry leave"
    scores = reranker.scores(query, texts)
    raw = CrossEncoder(str(tiny["cross-encoder"]), device="cpu", local_files_only=True)
    np.testing.assert_allclose(scores, raw.predict([(query, t) for t in texts]), atol=1e-6)
    passages = [Passage(f"p{i}", t, f"{i}.txt", "t", None, 0, len(t), 1.0, 0.5) for i, t in enumerate(texts)]
    best_first = sorted(range(3), key=lambda i: -scores[i])
    assert [p.id for p in rerank(reranker, query, passages, 2)] == [f"p{i}" for i in best_first[:2]]


def test_a_cross_encoder_that_is_not_here_names_the_setting(tmp_path: Path) -> None:
    for missing in (str(tmp_path / "no-such-model"), "example-org/not-in-the-cache"):
        with pytest.raises(RerankerModelError, match=r"DOCBOT_RERANKER: cannot load the cross-encoder"):
            reranker_from_settings(Settings(reranker=missing))


def test_settings_to_a_cited_answer_with_a_cross_encoder(
    tiny: dict[str, Path], tmp_path: Path, docs: Path, hashing_embedder: HashingEmbedder
) -> None:
    settings = clean_settings(tmp_path / "data", **HASHING_COVERAGE, reranker=str(tiny["cross-encoder"]))
    services = indexed(build(settings, embedder=hashing_embedder), docs)
    assert isinstance(services.retriever.reranker, CrossEncoderReranker)
    answer = services.bot.ask("How many eggs can a honeybee queen lay in a day?")
    assert not answer.refused and answer.citations, answer
    assert answer.citations[0].source == "bees.txt"
