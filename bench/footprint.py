"""What an index of n chunks costs each part of a deployment, measured: the BM25 side every replica holds (build
time, files, load time, memory) and a Chroma server's memory and disk for n vectors. docs/deploy.md projects these
per-chunk figures to 10M chunks.

    python -m bench.footprint --chunks 100000 --json bench/results/footprint.json

The BM25 side is built by docbot's ``LexicalIndex`` over the benchmark corpus's real chunks, loaded in a fresh
process (what a replica does at start). The Chroma server gets the same chunks (texts and metadata as docbot
writes them) with random unit vectors of the model's 384 dimensions: the HNSW graph's memory depends on the count,
the dimensions and M, not on what the vectors mean (random vectors make inserting slower, not the graph bigger).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.corpus import build_corpus
from bench.machine import describe, process_memory_kib
from bench.replicas import chroma_server
from index.chunking import Chunker
from index.lexical import LexicalIndex
from index.loaders import normalise_text
from index.types import Document

HERE = Path(__file__).resolve().parent
DIMENSION = 384
#: Records a write sends to the Chroma server.
WRITE_BATCH = 2000


@dataclass
class Bm25Footprint:
    chunks: int
    build_seconds: float
    files_mib: float
    load_seconds: float  # a fresh process: LexicalIndex.load (the arrays are read whole: memory = files_mib)
    nonzeros: int  # (chunk, term) pairs in the sparse matrix
    vocabulary: int


@dataclass
class ChromaFootprint:
    chunks: int
    write_seconds: float
    empty_rss_mib: float  # the server before any write
    rss_mib: float  # after the writes and a query (the HNSW index is in memory)
    disk_mib: float


def corpus_chunks(n: int, cache: Path) -> tuple[list[str], list[str], list[dict[str, object]]]:
    """(ids, texts, metadatas) of the benchmark corpus of ``n`` chunks, split as docbot splits it."""
    chunker = Chunker(800, 150)
    info = build_corpus(cache / "corpus" / str(n), n, chunker)
    ids: list[str] = []
    texts: list[str] = []
    metadatas: list[dict[str, object]] = []
    for path in sorted(info.folder.rglob("doc-*")):
        source = str(path.relative_to(info.folder))
        text = normalise_text(path.read_text())
        for chunk in chunker.split(Document(text, source, text.splitlines()[0].lstrip("# ")), "-"):
            ids.append(chunk.id)
            texts.append(chunk.text)
            metadatas.append({"source": source, "title": chunk.title, "start": chunk.start, "end": chunk.end})
    return ids, texts, metadatas


def _folder_mib(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def _load_in_child(folder: str, results: multiprocessing.Queue[float]) -> None:
    import bm25s  # noqa: F401 - the library's own import is not what loading an index costs

    started = time.perf_counter()
    LexicalIndex.load(Path(folder))
    results.put(time.perf_counter() - started)


def bm25(ids: list[str], texts: list[str], folder: Path) -> Bm25Footprint:
    started = time.perf_counter()
    lexical = LexicalIndex.build(ids, texts)
    build_seconds = time.perf_counter() - started
    lexical.save(folder)
    matrix = lexical._retriever.scores  # bm25s: the sparse matrix's arrays
    vocabulary = len(lexical._retriever.vocab_dict)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[float] = context.Queue()
    child = context.Process(target=_load_in_child, args=(str(folder), results))
    child.start()
    load_seconds = results.get(timeout=600)
    child.join()
    return Bm25Footprint(
        len(ids),
        round(build_seconds, 1),
        _folder_mib(folder),
        round(load_seconds, 2),
        int(matrix["data"].size),
        vocabulary,
    )


def chroma(ids: list[str], texts: list[str], metadatas: list[dict[str, object]], work: Path) -> ChromaFootprint:
    import chromadb

    rng = np.random.default_rng(7)
    with chroma_server(work / "chroma", work / "chroma.log") as server:
        empty = process_memory_kib(server.process.pid) / 1024
        port = int(server.url.rsplit(":", 1)[1])
        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        collection = client.create_collection("footprint", configuration={"hnsw": {"space": "cosine"}})
        started = time.perf_counter()
        for at in range(0, len(ids), WRITE_BATCH):
            vectors = rng.standard_normal((min(WRITE_BATCH, len(ids) - at), DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            part = slice(at, at + len(vectors))
            collection.add(ids=ids[part], embeddings=vectors, documents=texts[part], metadatas=metadatas[part])
        collection.query(query_embeddings=rng.standard_normal((1, DIMENSION)).astype(np.float32), n_results=30)
        write_seconds = time.perf_counter() - started
        rss = process_memory_kib(server.process.pid) / 1024
    return ChromaFootprint(
        len(ids), round(write_seconds, 1), round(empty, 1), round(rss, 1), _folder_mib(work / "chroma")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="benchmark corpora, reused")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    ids, texts, metadatas = corpus_chunks(args.chunks, args.cache)
    with tempfile.TemporaryDirectory(prefix="footprint-") as work:
        lexical = bm25(ids, texts, Path(work) / "bm25")
        print(f"BM25: {lexical}", flush=True)
        store = chroma(ids, texts, metadatas, Path(work))
        print(f"Chroma: {store}", flush=True)
    figures = {"machine": describe(), "bm25": asdict(lexical), "chroma": asdict(store)}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
