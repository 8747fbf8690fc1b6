"""The ``docbot`` command: index, ask, chat, serve, eval. Parsing and printing only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.citations import Answer
from bot.config import Settings

if TYPE_CHECKING:
    from bot.chat import Bot

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


def _open_bot(settings: Settings, generator: str | None) -> Bot:
    from bot.chat import Bot
    from bot.llm import BackendError
    from index.store import IndexMismatchError, StoreUnavailableError

    if generator:
        settings = settings.model_copy(update={"generator": generator})
    try:
        bot = Bot.from_settings(settings)
    except (IndexMismatchError, StoreUnavailableError, BackendError) as exc:
        raise _fail(str(exc)) from exc
    if bot.retriever.store.count() == 0:
        raise _fail("the index is empty: run `docbot index PATH` first (make run indexes seeds/)")
    return bot


def _print_answer(answer: Answer) -> None:
    if answer.notice:
        typer.secho(f"note: {answer.notice}", fg="yellow", err=True)
    if answer.citations:
        typer.echo("")
        for c in answer.citations:
            where = c.source + (f", page {c.page}" if c.page else "") + f", chars {c.quote_start}-{c.quote_end}"
            typer.secho(f"[{c.number}] {c.title} ({where})", bold=True)
            typer.echo(f'    "{c.quote}"')


GeneratorOption = Annotated[
    str | None, typer.Option("--generator", "-g", help="extractive, local or openai (default: settings).")
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the structured answer as JSON.")] = False,
    k: Annotated[int | None, typer.Option(help="Passages to retrieve.")] = None,
    generator: GeneratorOption = None,
) -> None:
    """Answer one question with cited passages."""
    bot = _open_bot(_settings(), generator)
    try:
        if as_json:
            typer.echo(json.dumps(bot.ask(question, k=k).to_dict(), indent=2, ensure_ascii=False))
            return
        answer = _stream_to_terminal(bot, question, [], k)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    _print_answer(answer)


def _stream_to_terminal(bot: Bot, question: str, history: list[tuple[str, str]], k: int | None) -> Answer:
    for piece in bot.stream(question, history, k):
        if isinstance(piece, Answer):
            typer.echo("")
            return piece
        typer.echo(piece, nl=False)
    raise AssertionError("stream ended without an answer")


@app.command()
def chat(generator: GeneratorOption = None) -> None:
    """An interactive conversation in the terminal (follow-up questions use the history)."""
    bot = _open_bot(_settings(), generator)
    history: list[tuple[str, str]] = []
    typer.echo(f"docbot ({bot.generator_name}). Ask a question; 'new' starts over, Ctrl-D or 'quit' leaves.")
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if question.lower() in {"quit", "exit"}:
            return
        if question.lower() == "new":
            history.clear()
            typer.echo("(new conversation)")
            continue
        if not question:
            continue
        typer.echo("bot> ", nl=False)
        answer = _stream_to_terminal(bot, question, history, None)
        _print_answer(answer)
        history.append((question, answer.text))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: settings, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 7860).")] = None,
) -> None:
    """Serve the chat page, the REST API and the embed widget."""
    from app import serve as serve_app

    settings = _settings()
    settings = settings.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    serve_app(settings)


def main() -> None:
    app()
