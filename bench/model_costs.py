"""``python -m bench.model_costs``: CPU costs of the optional models of docs/models.md, measured offline.

No real reranker or e5/bge weights are on this machine (nothing is downloaded), so the cross-encoders timed here are
randomly initialised BERTs of the published shapes (a forward pass costs the same whatever the weights), read
through the bundled all-MiniLM-L6-v2's tokenizer; the prompt path is timed on the bundled model itself.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: (name, layers, hidden size, attention heads, feed-forward size) of published cross-encoders' shapes.
SHAPES = [
    ("MiniLM-L6 (ms-marco-MiniLM-L-6-v2 shape)", 6, 384, 12, 1536),
    ("BERT-base (bge-reranker-base shape)", 12, 768, 12, 3072),
]
PASSAGE = (
    "The morning ferry leaves the north pier at seven and returns from the island at noon; in winter the crossing "
    "is cancelled when the wind is above force seven, and the harbour master posts notices at the pier. "
) * 4  # ~800 characters, the default chunk size
QUESTION = "When does the morning ferry leave the north pier?"


def median_ms(run: Callable[[], object], repeat: int = 7) -> float:
    run()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cross_encoder_costs(candidates: tuple[int, ...] = (10, 20, 50)) -> list[str]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from index.embeddings import bundled_model_path
    from index.rerank import CrossEncoderReranker

    tokenizer_dir = bundled_model_path()
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        for name, layers, hidden, heads, ffn in SHAPES:
            path = Path(folder) / str(layers)
            config = BertConfig(
                vocab_size=30522,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=ffn,
                num_labels=1,
                max_position_embeddings=512,
            )
            torch.manual_seed(0)
            BertForSequenceClassification(config).save_pretrained(path)
            AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True).save_pretrained(path)
            reranker = CrossEncoderReranker(str(path))
            for n in candidates:
                ms = median_ms(lambda n=n, r=reranker: r.scores(QUESTION, [PASSAGE] * n), repeat=3)
                lines.append(f"| {name} | {n} | {ms:.0f} ms |")
    return lines


def prompt_path_costs() -> list[str]:
    from index.embeddings import Embedder
    from index.prompts import Prompts
    from index.settings import BUNDLED_EMBEDDING_MODEL

    plain = Embedder(BUNDLED_EMBEDDING_MODEL, query_engine="onnx")
    prompted = Embedder(BUNDLED_EMBEDDING_MODEL, query_engine="onnx", prompts=Prompts("query: ", "passage: "))
    chunks = [PASSAGE] * 64
    engine = plain.query_engine
    return [
        f"| one question, no prompts ({engine}) | {median_ms(lambda: plain.encode_queries([QUESTION])):.1f} ms |",
        f"| one question, with prompts (torch) | {median_ms(lambda: prompted.encode_queries([QUESTION])):.1f} ms |",
        f"| 64 chunks, no prompts | {median_ms(lambda: plain.encode(chunks), repeat=3):.0f} ms |",
        f"| 64 chunks, with prompts | {median_ms(lambda: prompted.encode(chunks), repeat=3):.0f} ms |",
    ]


def main() -> None:
    print("| cross-encoder | candidates | rerank one question |\n|---|---:|---:|")
    print("\n".join(cross_encoder_costs()))
    print("\n| bundled all-MiniLM-L6-v2 | median |\n|---|---:|")
    print("\n".join(prompt_path_costs()))


if __name__ == "__main__":
    main()
