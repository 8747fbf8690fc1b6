"""docs/configuration.md and docs/cli.md are generated (``python -m bot.docs_gen``); this fails when they drift."""

from __future__ import annotations

from bot.config import Settings
from bot.docs_gen import CLI, CONFIGURATION, ROOT, drifted


def test_every_setting_has_a_description() -> None:
    assert [name for name, info in Settings.model_fields.items() if not info.description] == []


def test_generated_docs_match_the_settings_and_the_help() -> None:
    assert drifted() == [], "run: python -m bot.docs_gen (then commit docs/configuration.md and docs/cli.md)"


def test_the_generated_docs_hold_every_setting_and_command() -> None:
    configuration = (ROOT / CONFIGURATION).read_text(encoding="utf-8")
    assert all(f"`DOCBOT_{name.upper()}`" in configuration for name in Settings.model_fields)
    cli = (ROOT / CLI).read_text(encoding="utf-8")
    for command in ("index", "ask", "chat", "serve", "eval run", "eval compare", "eval import-squad"):
        assert f"$ docbot {command} --help" in cli


def test_the_benchmark_page_shows_the_hand_written_notes_of_bench_analysis() -> None:
    """docs/benchmarks.md's "Where the time goes" is rendered from bench/analysis.md by ``python -m bench``: a note
    written into the page instead would be lost at the next run."""
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    shown = page.split("## Where the time goes\n", 1)[1].split("\n## Filters\n", 1)[0]  # bench.report's headings
    notes = (ROOT / "bench" / "analysis.md").read_text(encoding="utf-8")
    assert shown.strip() == notes.strip(), "write it in bench/analysis.md"
