"""The ``docbot`` command: index, ask, chat, serve, eval, feedback, purge, access. Parsing and printing only."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from bot.answer.citations import Answer
from bot.cli_access import access_app
from bot.config import Settings
from bot.settings_errors import SettingsError, load_settings

if TYPE_CHECKING:
    from app import State
    from bot.answer.chat import Bot
    from bot.eval.questions import QuestionItem
    from bot.eval.run import RunSpec
    from index.collections import Collections
    from index.filters import Filter


def failure_lines(exc: Exception) -> tuple[list[str], int] | None:
    """The one place the CLI turns a domain error into what it prints (one line a problem) and its exit code.

    2: the input is wrong (a setting, the question, a file given to eval); 1: something failed (the store, the
    model, an index run). None: not a domain error, a bug: its traceback is the report.
    """
    from bot.access.policy import AccessError
    from bot.answer.errors import BackendError, QuestionError
    from bot.eval.importers import SquadError
    from bot.eval.questions import QuestionSetError
    from bot.eval.retrievers import RetrieversError
    from bot.eval.run import EvalError, GateError, ResultsFileError
    from bot.state.database import DatabaseError
    from bot.state.feedback import FeedbackFileError
    from bot.state.grants import GrantError
    from index import errors
    from index.filters import FilterError

    if isinstance(exc, SettingsError):
        return exc.lines, 2
    if isinstance(exc, AccessError):  # users, keys or roles that the access policy cannot use (names the setting)
        return [str(exc)], 2
    if isinstance(exc, QuestionSetError):
        return [f"{exc.path}: {problem}" for problem in exc.problems], 2
    refused = (QuestionError, GateError, RetrieversError, SquadError, ResultsFileError, FeedbackFileError)
    if isinstance(exc, (*refused, FilterError, errors.CollectionError, GrantError, errors.RerankerModelError)):
        return [str(exc)], 2
    failures = (
        errors.StoreUnavailableError,
        errors.IndexMismatchError,
        errors.IndexRunError,
        errors.LexicalIndexError,
        errors.EmbeddingModelError,
        BackendError,
        EvalError,
        DatabaseError,
    )
    if isinstance(exc, failures):
        return [str(exc)], 1
    return None


class _DocbotGroup(TyperGroup):
    """Every command runs inside :func:`failure_lines`: a domain error is printed as one line, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failed = failure_lines(exc)
            if failed is None:
                raise
            lines, code = failed
            for line in lines:
                typer.secho(f"error: {line}", err=True, fg="red")
            raise typer.Exit(code) from exc


app = typer.Typer(
    cls=_DocbotGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Answers questions about your documents, with cited passages.",
)


@app.callback()
def _root() -> None:
    """docbot: answers questions about your documents, with cited passages."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


@contextmanager
def _indexing_progress() -> Iterator[Callable[[int, int, int], None]]:
    """An index run's progress callback drawing a bar on stderr (nothing when stderr is not a terminal)."""
    from tqdm import tqdm

    with tqdm(desc="indexing", unit="file", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(done: int, total: int, chunks: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix(chunks=chunks, refresh=True)

        yield progress


CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        "-c",
        metavar="NAME[,NAME...]",
        help="The collection (default: DOCBOT_DEFAULT_COLLECTION, default); ask and chat take several, "
        "comma-separated, searched as one ranking.",
    ),
]
WhereOption = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="FILTER",
        help="Only passages that pass this filter: type=pdf,tag=hr,path=policies/,after=2025-01-01 (keys path, type, "
        "tag, after, before; a repeated key is any of its values), or the same as JSON.",
    ),
]


def _collection_names(settings: Settings, given: str | None) -> list[str]:
    from index.collections import check_name

    names = [check_name(n.strip()) for n in (given or settings.default_collection).split(",") if n.strip()]
    if not names:
        raise _fail("--collection: name at least one collection", 2)
    return list(dict.fromkeys(names))


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and folders to index (default: seeds/).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Drop the index and build it again from scratch.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit non-zero when any file fails.")] = False,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            help="Index into this collection, created if new (default: DOCBOT_DEFAULT_COLLECTION).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="Tag every file this run indexes (repeatable), beside its front matter tags and folder name."
        ),
    ] = None,
) -> None:
    """Index documents incrementally: only new and changed files are embedded; deleted files are removed."""
    from app import build, collection_settings
    from index.collections import check_name

    settings = load_settings()
    name = check_name(collection or settings.default_collection)
    services = build(collection_settings(settings, name), rebuild=rebuild)
    with _indexing_progress() as progress:
        report = services.indexer.run(paths or [Path("seeds")], progress=progress, tags=tag or ())
    typer.echo(report.summary())
    if strict and report.failed:
        raise typer.Exit(1)


def _open_bot(settings: Settings, collection: str | None = None) -> Bot:
    from app import build_library
    from index.collections import Collections

    names = _collection_names(settings, collection)
    for name in names:  # before the model loads
        Collections(settings).require(name)
    library = build_library(settings)
    bot = library.bot(names)
    if all(library.services(name).store.count() == 0 for name in names):
        where = "" if names == ["default"] else f" --collection {','.join(names)}"
        raise _fail(f"the index is empty: run `docbot index{where} PATH` first (make run indexes seeds/)")
    return bot


def _print_answer(answer: Answer, explain: bool = False) -> None:
    if answer.notice:
        typer.secho(f"note: {answer.notice}", fg="yellow", err=True)
    if explain and answer.why:
        typer.secho(f"why: {answer.why}", fg="cyan", err=True)
    if answer.related:
        typer.echo("")
        typer.secho("related (not the answer):", bold=True)
        typer.echo(answer.related_block())
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
    collection: CollectionOption = None,
    where: WhereOption = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also say why it was answered or declined (coverage figures).")
    ] = False,
) -> None:
    """Answer one question with cited passages."""
    from index.filters import Filter

    condition = Filter.parse(where) if where else None
    bot = _open_bot(load_settings(generator=generator), collection)
    if as_json:
        typer.echo(json.dumps(bot.ask(question, k=k, where=condition).to_dict(), indent=2, ensure_ascii=False))
        return
    _print_answer(_stream_to_terminal(bot, question, [], k, condition), explain)


def _stream_to_terminal(
    bot: Bot, question: str, history: list[tuple[str, str]], k: int | None, where: Filter | None = None
) -> Answer:
    for piece in bot.stream(question, history, k, where):
        if isinstance(piece, Answer):
            typer.echo("")
            return piece
        typer.echo(piece, nl=False)
    raise AssertionError("stream ended without an answer")


@app.command()
def chat(generator: GeneratorOption = None, collection: CollectionOption = None) -> None:
    """An interactive conversation in the terminal (follow-up questions use the history)."""
    bot = _open_bot(load_settings(generator=generator), collection)
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
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection", "-c", help="The collection asked when a request names none (default: settings, default)."
        ),
    ] = None,
) -> None:
    """Serve the chat page, the REST API and the embed widget."""
    from app import serve as serve_app

    serve_app(load_settings(host=host, port=port, default_collection=collection))


def admin_state() -> State:
    """The state database's stores for this command (``app.admin_state``), opened on first use."""
    from app import admin_state as state_of

    return state_of(load_settings())


# --- collections: docbot collections [list | create | rename | delete] ---------------------------

collections_app = typer.Typer(
    cls=_DocbotGroup,
    invoke_without_command=True,
    help="The collections of this docbot: list them (the default), create, rename, delete.",
)
app.add_typer(collections_app, name="collections")


def _collections() -> Collections:
    from index.collections import Collections

    return Collections(load_settings())


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@collections_app.callback()
def collections_list(ctx: typer.Context) -> None:
    """List every collection: documents, passages, size of its text, when it was last indexed."""
    if ctx.invoked_subcommand is not None:
        return
    collections = _collections()
    rows = [collections.info(name) for name in collections.names()]
    typer.echo(f"{'collection':<24} {'documents':>9} {'passages':>9} {'size':>9}  last indexed")
    for info in rows:
        when = info.last_indexed.astimezone().strftime("%Y-%m-%d %H:%M") if info.last_indexed else "never"
        typer.echo(f"{info.name:<24} {info.documents:>9} {info.passages:>9} {_size(info.size_bytes):>9}  {when}")


@collections_app.command("create")
def collections_create(name: Annotated[str, typer.Argument(help="lowercase letters, digits, - and _")]) -> None:
    """Create an empty collection (docbot index --collection NAME PATH also creates it)."""
    _collections().create(name)
    typer.echo(f"created collection {name}; fill it with: docbot index --collection {name} PATH")


@collections_app.command("rename")
def collections_rename(old: str, new: str) -> None:
    """Rename a collection; nothing is indexed again."""
    collections = _collections()
    collections.rename(old, new)
    state = admin_state()
    state.grants.rename_collection(old, new)
    state.uploads.rename_collection(collections.chroma_name(old), collections.chroma_name(new))
    typer.echo(f"renamed collection {old} to {new} (its grants, scoped keys and uploads follow it)")


@collections_app.command("delete")
def collections_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False
) -> None:
    """Delete a collection and every trace of it: passages, BM25 files, uploads and their records."""
    collections = _collections()
    info = collections.info(name)
    emptied = " (the default collection stays, empty)" if name == "default" else ""
    question = f"Delete collection {name} with {info.documents} documents and {info.passages} passages{emptied}?"
    if not yes and not typer.confirm(question, default=False):
        raise _fail("nothing was deleted")
    collections.delete(name)
    state = admin_state()
    state.uploads.forget_collection(collections.chroma_name(name))
    if name != "default":  # the default collection stays (empty), and so does who may read it
        state.grants.forget_collection(name)
    typer.echo(f"deleted collection {name}")


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
app.add_typer(access_app, name="access")


def _enter_temporary_bot(stack: ExitStack, settings: Settings, docs: Path) -> Bot:
    """A bot over ``docs`` indexed into a temporary folder, removed when ``stack`` closes (always a local store)."""
    from app import build
    from bot.eval.run import index_for_run, temporary_settings

    services = build(stack.enter_context(temporary_settings(settings, docs)))
    with _indexing_progress() as progress:
        report = index_for_run(services.indexer, services.store, docs, progress)
    bot = services.bot
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
    collection: CollectionOption = None,
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
    retrievers: Annotated[
        str | None,
        typer.Option(
            metavar="NAMES",
            help="Also rank every question with these retrievers and report them side by side, e.g. hybrid,dense,bm25.",
        ),
    ] = None,
    reranker: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL|URL",
            help="Run the set twice over the same index, without a reranker and with this one (a CrossEncoder's "
            "folder or cached name, or a rerank endpoint's URL, sent DOCBOT_RERANKER as the model name), write "
            "OUT/without-reranker and OUT/with-reranker and print their comparison (as eval compare).",
        ),
    ] = None,
) -> None:
    """Ask every question of a set, score the answers, write the reports and print the summary."""
    from bot.eval.questions import load_question_set
    from bot.eval.retrievers import parse_retrievers
    from bot.eval.run import Gate, RunSpec, reranked_bot, with_reranker

    if docs is not None and collection is not None:
        raise _fail("--docs indexes into a temporary index and --collection names an existing one: give one", 2)
    items = load_question_set(questions)
    gates = tuple(Gate.parse(text) for text in fail_under or [])
    compared = parse_retrievers(retrievers) if retrievers else ()
    settings = load_settings(generator=generator)
    model = settings.reranker  # the model name a rerank endpoint is sent (DOCBOT_RERANKER)
    if reranker is not None:
        settings = with_reranker(settings, None)  # run A: no reranker, whatever the settings configure
    spec = RunSpec(questions, k, docs, gates, compared)
    runs: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        bot = _enter_temporary_bot(stack, settings, docs) if docs else _open_bot(settings, collection)
        runs["without-reranker" if reranker is not None else ""] = _evaluate_with_bar(bot, items, spec)
        if reranker is not None:
            runs["with-reranker"] = _evaluate_with_bar(reranked_bot(bot, reranker, model), items, spec)
    out = out or Path("eval-runs") / f"{questions.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    _write_runs(runs, out, settings)


def _evaluate_with_bar(bot: Bot, items: list[QuestionItem], spec: RunSpec) -> dict[str, Any]:
    from tqdm import tqdm

    from bot.eval.run import evaluate

    with tqdm(total=len(items), desc="evaluating", unit="question", file=sys.stderr, disable=None) as bar:
        return evaluate(bot, items, spec, lambda _: bar.update())


def _write_runs(runs: dict[str, dict[str, Any]], out: Path, settings: Settings) -> None:
    """Each run's reports (one run in ``out``; several in ``out/NAME``, compared the first with the last), the
    summary or comparison printed; exit 1 when a run failed a gate."""
    from bot.eval.compare import compare_runs
    from bot.eval.report import compare_markdown
    from bot.eval.run import failed_gates, write_run

    written = {name: write_run(results, out / name, settings.view_base_url) for name, results in runs.items()}
    if len(runs) == 1:
        typer.echo(next(iter(written.values()))[1].read_text(encoding="utf-8"), nl=False)
    else:
        (a, first), (b, last) = next(iter(runs.items())), list(runs.items())[-1]
        comparison = compare_markdown(compare_runs(first, last, (str(out / a), str(out / b))))
        (out / "compare.md").write_text(comparison, encoding="utf-8")
        typer.echo(comparison, nl=False)
    typer.echo(f"wrote {', '.join(str(p) for paths in written.values() for p in paths)}", err=True)
    failed = [gate for results in runs.values() for gate in failed_gates(results)]
    if failed:
        raise _fail("gate(s) failed: " + "; ".join(f"{g['metric']}: {g['reason']}" for g in failed))


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier run: its --out folder or results.json.")],
    run_b: Annotated[Path, typer.Argument(help="The later run.")],
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when any metric regressed.")] = False,
) -> None:
    """Metric deltas of two runs side by side (B − A), regressions marked."""
    from bot.eval.compare import compare_runs
    from bot.eval.report import compare_markdown
    from bot.eval.run import load_results

    a, b = load_results(run_a), load_results(run_b)
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
    from bot.eval.importers import import_squad

    out = out or Path(f"{file.stem}-eval")
    result = import_squad(file, out, max_articles)
    typer.echo(result.summary())
    typer.echo(f"evaluate with: docbot eval {result.questions} --docs {out / 'docs'}")


# --- feedback: docbot feedback export ---------------------------------------------------------------

feedback_app = typer.Typer(no_args_is_help=True, help="The votes given on answers, kept in the state database.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
) -> None:
    """Every vote as JSON lines, oldest first: the shape feedback.jsonl had."""
    from app import import_feedback_file

    settings, state = load_settings(), admin_state()
    import_feedback_file(settings, state)  # a feedback.jsonl docbot serve has not imported yet counts too
    lines = state.feedback.export_lines()
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
    except OSError as exc:
        raise _fail(f"cannot write {output} ({exc.strerror or exc}); choose another --output", 2) from exc


# --- purge: docbot purge [--dry-run] ---------------------------------------------------------------


def _retained_since(days: int, what: str, setting: str) -> datetime | None:
    """The oldest time ``days`` of retention keep (None: 0 days, ``what`` is kept forever, which is said)."""
    if days == 0:
        typer.echo(f"{what} kept forever ({setting} is 0)")
        return None
    return datetime.now(UTC) - timedelta(days=days)


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete the conversations and votes older than their retention (DOCBOT_CONVERSATION_RETENTION_DAYS,
    DOCBOT_VOTE_RETENTION_DAYS), saying how many."""
    from app import import_feedback_file

    settings, state = load_settings(), admin_state()
    verb = "would delete" if dry_run else "deleted"
    since = _retained_since(settings.conversation_retention_days, "conversations", "DOCBOT_CONVERSATION_RETENTION_DAYS")
    if since is not None:
        gone = state.conversations.purge(since, dry_run)
        typer.echo(
            f"{verb} {gone.conversations} conversations ({gone.turns} turns) last continued before {since:%F %R} UTC"
        )
    since = _retained_since(settings.vote_retention_days, "votes", "DOCBOT_VOTE_RETENTION_DAYS")
    if since is not None:
        import_feedback_file(settings, state)  # a feedback.jsonl docbot serve has not imported yet counts too
        typer.echo(f"{verb} {state.feedback.purge(since, dry_run)} votes cast before {since:%F %R} UTC")


def main() -> None:
    app()
