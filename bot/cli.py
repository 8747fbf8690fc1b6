"""The ``docbot`` command: index, ask, chat, serve, eval. Parsing and printing only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Answers questions about your documents, with cited passages.",
)


@app.callback()
def _root() -> None:
    """docbot: answers questions about your documents, with cited passages."""


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:
        typer.secho(f"error: bad settings: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and folders to index (default: seeds/).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Drop the index and build it again from scratch.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit non-zero when any file fails.")] = False,
) -> None:
    """Index documents incrementally: only new and changed files are embedded; deleted files are removed."""
    from tqdm import tqdm

    from index.embeddings import Embedder
    from index.pipeline import Indexer
    from index.store import IndexMismatchError, StoreUnavailableError, VectorStore

    settings = _settings()
    try:
        embedder = Embedder(settings.embedding_model, settings.embed_batch_size)
        store = VectorStore(settings, embedder.name, embedder.dimension, rebuild=rebuild)
    except (IndexMismatchError, StoreUnavailableError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    with tqdm(desc="indexing", unit="file", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(done: int, total: int, chunks: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix(chunks=chunks, refresh=True)

        report = Indexer(settings, embedder, store).run(paths or [Path("seeds")], progress=progress)
    typer.echo(report.summary())
    if strict and report.failed:
        raise typer.Exit(1)


def main() -> None:
    app()
