"""Indexing speed, same corpus, same machine, one fresh process per way of doing it.

- ``docbot``: ``index.pipeline.Indexer`` (what ``docbot index`` runs), then a second run over the
  unchanged corpus;
- ``raw``: ``SentenceTransformer.encode`` alone over the very texts docbot embeds (its chunks and their
  sentences), at docbot's precision (the limit);
- ``langchain``: the usual recipe (chunk vectors only, no sentence vectors), ``RecursiveCharacterTextSplitter``
  + ``Chroma.from_documents`` with ``HuggingFaceEmbeddings`` on the same bundled model.

Each runs in its own process (``python -m bench.indexing METHOD CORPUS WORKDIR OUT``) so that peak
memory is its own and no warm cache is shared. Loading the model is timed apart from the work.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.machine import load_average
from bot.config import Settings

METHODS = ("raw", "docbot", "langchain")

#: The environment every worker runs in: no hub, no telemetry.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


@dataclass
class IndexRun:
    method: str
    chunks: int
    seconds: float  # wall time of the work, model loading excluded
    cpu_seconds: float  # user + system time of the process over the same span
    load_seconds: float  # loading the embedding model
    peak_rss_mib: float  # the process's peak resident memory, model included
    rerun_seconds: float | None = None  # docbot only: a second run over the unchanged corpus
    precision: str = "float32"  # the model's arithmetic: LangChain's is always float32
    load_average: tuple[float, ...] = ()

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(work: Callable[[], int]) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    chunks = work()
    return chunks, time.perf_counter() - wall, _cpu() - cpu


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix in (".md", ".txt"))


def _raw(corpus: Path, workdir: Path, settings: Settings) -> IndexRun:
    import torch
    from sentence_transformers import SentenceTransformer

    from index.chunking import Chunker
    from index.embeddings import bundled_model_path, resolve_precision
    from index.loaders import load_file
    from index.sentences import sentence_spans

    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    chunks = [
        chunk.text
        for path in corpus_files(corpus)
        for doc in load_file(path, path.name, max_bytes=settings.max_file_bytes).documents
        for chunk in chunker.split(doc, "-")
    ]
    texts = [*chunks, *(text[lo:hi] for text in chunks for lo, hi in sentence_spans(text))]
    started = time.perf_counter()
    model = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
    load = time.perf_counter() - started
    precision = resolve_precision(settings.embed_precision)

    def work() -> int:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return len(chunks)

    count, seconds, cpu = _timed(work)
    return IndexRun("raw", count, seconds, cpu, load, _peak_rss_mib(), precision=precision)


def _docbot(corpus: Path, workdir: Path, settings: Settings) -> IndexRun:
    from app import build
    from index.embeddings import Embedder

    started = time.perf_counter()
    embedder = Embedder.from_settings(settings)
    load = time.perf_counter() - started
    indexer = build(settings, embedder=embedder, rebuild=True).indexer
    chunks, seconds, cpu = _timed(lambda: indexer.run([corpus]).chunks_embedded)
    rerun = indexer.run([corpus])
    if rerun.chunks_embedded or rerun.changed:
        raise RuntimeError(f"a re-run over the unchanged corpus did work: {rerun.summary()}")
    return IndexRun(
        "docbot", chunks, seconds, cpu, load, _peak_rss_mib(), rerun_seconds=rerun.seconds, precision=embedder.precision
    )


def _langchain(corpus: Path, workdir: Path, settings: Settings) -> IndexRun:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from index.embeddings import bundled_model_path

    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(bundled_model_path()))
    load = time.perf_counter() - started

    def work() -> int:
        documents = [
            Document(page_content=path.read_text(encoding="utf-8"), metadata={"source": str(path)})
            for path in corpus_files(corpus)
        ]
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap, add_start_index=True
        )
        chunks = splitter.split_documents(documents)
        Chroma.from_documents(chunks, embeddings, persist_directory=str(workdir / "langchain"))
        return len(chunks)

    chunks, seconds, cpu = _timed(work)
    return IndexRun("langchain", chunks, seconds, cpu, load, _peak_rss_mib())


WORKERS: dict[str, Callable[[Path, Path, Settings], IndexRun]] = {
    "raw": _raw,
    "docbot": _docbot,
    "langchain": _langchain,
}


def measure(method: str, corpus: Path, workdir: Path) -> IndexRun:
    """Run one way of indexing ``corpus`` in a fresh process; ``workdir`` receives what it writes."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{method}.json"
    before = load_average()
    subprocess.run(
        [sys.executable, "-m", "bench.indexing", method, str(corpus), str(workdir), str(out)],
        check=True,
        env={**os.environ, **WORKER_ENV},
    )
    run = IndexRun(**json.loads(out.read_text()))
    run.load_average = (*before, *load_average())
    return run


def worker_settings(workdir: Path) -> Settings:
    return Settings(data_dir=workdir / "docbot")


def main(argv: list[str]) -> None:
    method, corpus, workdir, out = argv
    run = WORKERS[method](Path(corpus), Path(workdir), worker_settings(Path(workdir)))
    Path(out).write_text(json.dumps(asdict(run)))


if __name__ == "__main__":
    main(sys.argv[1:])
