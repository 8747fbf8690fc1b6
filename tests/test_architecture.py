"""The import rule of the layout (docs/architecture.md, "The import rule"): imports point down and inward.

``web``/``cli``/``eval`` -> ``answer`` -> ``index``; ``index/`` never imports ``bot/``, ``app`` or ``bench/``; the web
layer is imported only by the composition root (``app.py``), and holds only adapters: each of its modules
imports FastAPI, Starlette or Gradio, and the rules and use cases they adapt (``bot/access``, ``bot/documents``,
``bot/view``, ``bot/ops``) import neither ``bot/web`` nor a web framework. Read from the source with ``ast``, every
import counted, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app.py", "bot", "index", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, as dotted names (``from a import b`` counts ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, set[str]]:
    files = [ROOT / "app.py"]
    for package in PACKAGES[1:]:
        files += sorted((ROOT / package).rglob("*.py"))
    return {module_name(path): imported_modules(path) for path in files}


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    return project_modules()


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(imports: dict[str, set[str]], importer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in imports.items()
        if within(module, importer)
        for target in targets
        if any(within(target, package) for package in forbidden)
    )


def test_the_walk_sees_every_room_and_its_imports(imports: dict[str, set[str]]) -> None:
    """Guards the guard: the walk finds the rooms and reads imports at module level and inside functions."""
    for module in ("app", "bot.cli", "bot.config", "bot.answer.chat", "bot.web.api", "bot.web.page.chat"):
        assert module in imports, module
    for module in ("bot.eval.run", "bot.access.policy", "bot.documents.changes", "bot.view.render", "bot.ops.health"):
        assert module in imports, module
    for module in ("index.settings", "index.errors", "index.protocols", "index.pipeline", "index.retriever"):
        assert module in imports, module
    assert "bot.web.api" in imports["app"]  # imported inside create_app
    assert "index.protocols" in imports["bot.answer.chat"]


def test_index_imports_nothing_from_bot_app_or_bench(imports: dict[str, set[str]]) -> None:
    assert offenders(imports, "index", ("bot", "app", "bench")) == []


def test_bench_imports_nothing_from_tests(imports: dict[str, set[str]]) -> None:
    """The benchmarks run without the test suite: what both need (bench/pdfs.py, say) lives in bench/. A test module
    counts under its package name and under its bare name (pytest puts tests/ on the path)."""
    assert "bench.views" in imports and "bench.pdfs" in imports["bench.views"]
    test_modules = tuple(path.stem for path in (ROOT / "tests").glob("*.py"))
    assert offenders(imports, "bench", ("tests", *test_modules)) == []


def test_the_read_path_does_not_import_the_write_path(imports: dict[str, set[str]]) -> None:
    assert offenders(imports, "index.retriever", ("index.pipeline",)) == []


def test_web_is_imported_only_by_the_composition_root(imports: dict[str, set[str]]) -> None:
    """The CLI (bot/cli.py, bot/cli_access.py) reaches the web layer only through app.py (``docbot serve``)."""
    importers = sorted(
        module
        for module, targets in imports.items()
        if not within(module, "bot.web") and any(within(target, "bot.web") for target in targets)
    )
    assert set(importers) <= {"app"}, importers


#: What makes a module an adapter: it imports one of these.
WEB_FRAMEWORKS = ("fastapi", "starlette", "gradio")
#: The rooms of rules and use cases the web layer adapts: free of the web layer and of every web framework.
FRAMEWORK_FREE = ("bot.access", "bot.documents", "bot.view", "bot.ops")


def web_modules_without_a_framework(web: Path) -> list[str]:
    """The modules under ``web`` (its packages' ``__init__`` aside) that import no web framework."""
    return sorted(
        module_name(path)
        for path in web.rglob("*.py")
        if path.name != "__init__.py"
        and not any(within(target, framework) for target in imported_modules(path) for framework in WEB_FRAMEWORKS)
    )


def test_every_module_of_web_imports_fastapi_starlette_or_gradio() -> None:
    """bot/web holds only adapters: a module that imports no web framework belongs in the room of what it does."""
    web = ROOT / "bot" / "web"
    assert {"bot.web.api", "bot.web.page.chat"} <= {module_name(path) for path in web.rglob("*.py")}
    assert web_modules_without_a_framework(web) == []


def test_the_rules_and_use_cases_import_neither_web_nor_a_web_framework(imports: dict[str, set[str]]) -> None:
    for room in FRAMEWORK_FREE:
        assert any(within(module, room) for module in imports), room
        assert offenders(imports, room, ("bot.web", *WEB_FRAMEWORKS)) == []


def test_answer_never_imports_web_or_eval(imports: dict[str, set[str]]) -> None:
    assert offenders(imports, "bot.answer", ("bot.web", "bot.eval", "bot.cli", "app", "bench")) == []


def test_eval_never_imports_web(imports: dict[str, set[str]]) -> None:
    assert offenders(imports, "bot.eval", ("bot.web",)) == []


def test_only_the_cli_and_the_benchmarks_reach_the_composition_root(imports: dict[str, set[str]]) -> None:
    importers = sorted(module for module, targets in imports.items() if "app" in targets and module != "app")
    assert set(importers) <= {
        "bot.cli",
        "bot.cli_access",
        "bench.answering",
        "bench.indexing",
        "bench.retrieval",
        "bench.filters",
        "bench.__main__",
    }, importers


#: What one docbot process holds once: the state database and its stores, the rate-limit counters, the worker pools
#: and the Library of collections. Only the composition root (app.py) constructs them; the rest are handed them.
PROCESS_PARTS = (
    "Database",
    "ConversationStore",
    "FeedbackStore",
    "GrantStore",
    "UploadStore",
    "WindowCounters",
    "WorkerPool",
    "ParsePool",
    "ViewerPool",
    "ProcessPoolExecutor",
    "Library",
)
#: Their constructors by another name: class methods that open one.
NAMED_CONSTRUCTORS = {("Database", "open"), ("Database", "for_settings")}


def constructions(source: str, filename: str = "<source>") -> list[str]:
    """The process parts ``source`` constructs, as ``Name`` or ``Name.method`` with the line: ``UploadStore(db)``,
    ``state.UploadStore(db)``, ``Database.open(url, folder)``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in PROCESS_PARTS:
            found.append(f"{name} (line {node.lineno})")
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) in NAMED_CONSTRUCTORS
        ):
            found.append(f"{func.value.id}.{func.attr} (line {node.lineno})")
    return found


def test_only_the_composition_root_constructs_the_state_stores_pools_and_library() -> None:
    """app.py builds each store, counter, pool and the Library once a process and hands them on; a module that
    constructs one (tests/ and bench/ aside) would make a second, bypassing it (issue 28)."""
    offending = {
        module_name(path): made
        for package in ("bot", "index")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (made := constructions(path.read_text(encoding="utf-8"), str(path)))
    }
    assert offending == {}


def test_the_construction_finder_sees_every_form_and_the_root_constructs_them() -> None:
    """Guards the guard: calls by bare name, through a module, and the named constructors are found; app.py makes
    every part it owns."""
    snippet = "a = UploadStore(db)\nb = state.GrantStore(db, 0)\nc = Database.for_settings(s)\nd = ViewerPool\n"
    assert constructions(snippet) == ["UploadStore (line 1)", "GrantStore (line 2)", "Database.for_settings (line 3)"]
    made = {entry.split(" ")[0] for entry in constructions((ROOT / "app.py").read_text(encoding="utf-8"))}
    owned = set(PROCESS_PARTS) - {"Database", "WorkerPool", "ProcessPoolExecutor"}
    assert owned | {"Database.for_settings"} <= made, sorted(made)


def import_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The project's import cycles: strongly connected groups of two or more modules (Tarjan, iteratively)."""
    graph = {module: sorted(t for t in targets if t in imports and t != module) for module, targets in imports.items()}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in order:
            continue
        work = [(root, 0)]
        while work:
            module, edge = work.pop()
            if edge == 0:
                order[module] = low[module] = len(order)
                stack.append(module)
                on_stack.add(module)
            if edge < len(graph[module]):
                work.append((module, edge + 1))
                target = graph[module][edge]
                if target not in order:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], order[target])
                continue
            if low[module] == order[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
    return cycles


def test_no_module_imports_itself_in_a_circle(imports: dict[str, set[str]]) -> None:
    # app.py's `if __name__ == "__main__"` block imports the CLI to run `docbot serve`: run as a script it is the
    # module __main__, not app, so that import is no edge of the graph.
    graph = {module: targets - {"bot.cli"} if module == "app" else targets for module, targets in imports.items()}
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
