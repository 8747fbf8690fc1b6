"""The ``docbot`` command: index, ask, chat, serve, eval. Parsing and printing only."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from typer.core import TyperGroup

from bot.answer.citations import Answer
from bot.config import Settings

if TYPE_CHECKING:
    from bot.answer.chat import Bot

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Answers questions about your documents, with cited passages.",
)


@app.callback()
def _root() -> None:
    """docbot: answers questions about your documents, with cited passages."""


def _settings(**overrides: object) -> Settings:
    """Settings from the environment and docbot.toml, with the command line's options on top (validated)."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
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

    from app import build
    from index.errors import IndexMismatchError, StoreUnavailableError

    settings = _settings()
    try:
        services = build(settings, rebuild=rebuild)
    except (IndexMismatchError, StoreUnavailableError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    try:
        with tqdm(desc="indexing", unit="file", file=sys.stderr, disable=None, leave=False) as bar:

            def progress(done: int, total: int, chunks: int) -> None:
                bar.total = total
                bar.n = done
                bar.set_postfix(chunks=chunks, refresh=True)

            report = services.indexer.run(paths or [Path("seeds")], progress=progress)
    except RuntimeError as exc:  # the store failed mid-run (a Chroma server gone, say): the message says what to do
        raise _fail(str(exc)) from exc
    typer.echo(report.summary())
    if strict and report.failed:
        raise typer.Exit(1)


def _open_bot(settings: Settings) -> Bot:
    from app import build
    from bot.answer.llm import BackendError
    from index.errors import IndexMismatchError, StoreUnavailableError

    try:
        bot = build(settings).bot
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
    bot = _open_bot(_settings(generator=generator))
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
    bot = _open_bot(_settings(generator=generator))
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
    from bot.answer.llm import BackendError
    from bot.web.access import AccessError
    from index.errors import IndexMismatchError, StoreUnavailableError

    settings = _settings(host=host, port=port)
    try:
        serve_app(settings)
    except (AccessError, IndexMismatchError, StoreUnavailableError, BackendError) as exc:  # while starting
        raise _fail(str(exc)) from exc


# --- eval: docbot eval QUESTIONS.jsonl | eval run | eval compare | eval import-squad ------------------


class _EvalGroup(TyperGroup):
    """``docbot eval QUESTIONS.jsonl ...`` is short for ``docbot eval run QUESTIONS.jsonl ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_EvalGroup,
    no_args_is_help=True,
    help="Evaluate question sets: docbot eval QUESTIONS.jsonl [OPTIONS] (same as eval run), "
    "eval compare RUN_A RUN_B, eval import-squad FILE.json.",
)
app.add_typer(eval_app, name="eval")


def _enter_temporary_bot(stack: ExitStack, settings: Settings, docs: Path) -> Bot:
    """A bot over ``docs`` indexed into a temporary folder, removed when ``stack`` closes (always a local store)."""
    from tqdm import tqdm

    from app import build
    from bot.answer.llm import BackendError
    from bot.eval.run import EvalError, index_for_run, temporary_settings

    bar = stack.enter_context(tqdm(desc="indexing", unit="file", file=sys.stderr, disable=None, leave=False))

    def progress(done: int, total: int, chunks: int) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix(chunks=chunks, refresh=True)

    try:
        services = build(stack.enter_context(temporary_settings(settings, docs)))
        report = index_for_run(services.indexer, services.store, docs, progress)
        bot = services.bot
    except (EvalError, BackendError) as exc:
        raise _fail(str(exc)) from exc
    bar.close()
    typer.echo(f"indexed {docs} into a temporary index: {report.summary()}", err=True)
    return bot


@eval_app.command("run")
def eval_run(
    questions: Annotated[Path, typer.Argument(help="The question set: JSON lines, see docs/eval.md.")],
    docs: Annotated[
        Path | None, typer.Option(help="Index these documents into a temporary index for the run (default: current).")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="Passages handed to the answerer.")] = 5,
    generator: GeneratorOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for results.json, summary.md, report.html (default: eval-runs/SET-TIME)."),
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-under",
            metavar="METRIC=VALUE",
            help="Exit 1 when METRIC is below VALUE or could not be measured (repeatable), e.g. hit@5=0.9.",
        ),
    ] = None,
) -> None:
    """Ask every question of a set, score the answers, write the reports and print the summary."""
    from tqdm import tqdm

    from bot.eval.questions import QuestionSetError, load_question_set
    from bot.eval.run import Gate, RunSpec, evaluate, failed_gates, write_run

    try:
        items = load_question_set(questions)
    except QuestionSetError as exc:
        for problem in exc.problems:
            typer.secho(f"error: {questions}: {problem}", err=True, fg="red")
        raise typer.Exit(2) from exc
    try:
        gates = tuple(Gate.parse(text) for text in fail_under or [])
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    settings = _settings(generator=generator)
    with ExitStack() as stack:
        bot = _enter_temporary_bot(stack, settings, docs) if docs else _open_bot(settings)
        with tqdm(total=len(items), desc="evaluating", unit="question", file=sys.stderr, disable=None) as bar:
            results = evaluate(bot, items, RunSpec(questions, k, docs, gates), lambda _: bar.update())
    out = out or Path("eval-runs") / f"{questions.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    written = write_run(results, out)
    typer.echo(written[1].read_text(encoding="utf-8"), nl=False)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    failed = failed_gates(results)
    if failed:
        raise _fail("gate(s) failed: " + "; ".join(f"{g['metric']}: {g['reason']}" for g in failed))


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier run: its --out folder or results.json.")],
    run_b: Annotated[Path, typer.Argument(help="The later run.")],
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when any metric regressed.")] = False,
) -> None:
    """Metric deltas of two runs side by side (B − A), regressions marked."""
    from bot.eval.report import compare_markdown
    from bot.eval.run import EvalError, compare_runs, load_results

    try:
        a, b = load_results(run_a), load_results(run_b)
    except EvalError as exc:
        raise _fail(str(exc), 2) from exc
    comparison = compare_runs(a, b, (str(run_a), str(run_b)))
    typer.echo(compare_markdown(comparison), nl=False)
    if fail_on_regression and comparison.regressions:
        raise typer.Exit(1)


@eval_app.command("import-squad")
def eval_import_squad(
    file: Annotated[Path, typer.Argument(help="A SQuAD v1.1 or v2.0 JSON file.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: FILE's name + -eval).")] = None,
    max_articles: Annotated[int | None, typer.Option(min=1, help="Import only the first N articles.")] = None,
) -> None:
    """Write the articles to OUT/docs and the questions to OUT/questions.jsonl, ready for docbot eval."""
    from bot.eval.importers import SquadError, import_squad

    out = out or Path(f"{file.stem}-eval")
    try:
        result = import_squad(file, out, max_articles)
    except SquadError as exc:
        raise _fail(str(exc), 2) from exc
    typer.echo(result.summary())
    typer.echo(f"evaluate with: docbot eval {result.questions} --docs {out / 'docs'}")


def main() -> None:
    app()
