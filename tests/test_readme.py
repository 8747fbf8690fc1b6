"""Every command the README shows runs as written.

The README's fenced blocks marked ``sh``, ``bash`` or ``console`` are commands (in a ``console`` block, the lines
after ``$ ``; the lines below one are its expected output). Each command has a runner, and a command without one
fails ``test_every_readme_command_has_a_runner``: a block added to the README must be runnable here.

- ``make TARGET``: ``make -n TARGET`` succeeds in the repository (a dry run: ``make run`` and ``make test`` install,
  serve or run every tier, which no test can do as written). Fast tier.
- ``docbot ...`` (not ``serve``): run for real, in README order, in a temporary folder holding what the README's
  commands name (``seeds/``, the seed question set, ``handbook/``, ``policies/hr/``), with the venv's bin first on
  PATH, ``DOCBOT_DATA_DIR`` in that folder and no other ``DOCBOT_*`` setting; ``seeds/`` is indexed first, as
  ``make run`` does. Each must exit 0; a ``console`` command must print its expected lines. Server tier.
- ``docbot serve``: started as written (``DOCBOT_PORT`` set to a free loopback port), ready when ``/api/health``
  answers 200 and the page loads, then stopped. Server tier.
- ``curl``: run as written against a ``docbot serve`` the test starts over the same folder, with the README's
  address ``http://127.0.0.1:7860`` replaced by that server's; its answer must be the one the README shows.
  Server tier.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import EVAL_SET, ROOT, SEEDS
from live import child_env, free_port, stop_process, wait_http

README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
SHELL_LANGUAGES = {"sh", "bash", "console"}
README_ADDRESS = "http://127.0.0.1:7860"

HANDBOOK = """# Expenses handbook

Travel booked through the company portal is paid by the company; anything else is claimed within thirty days
with its receipt.

Meals on a business trip are reimbursed up to forty euros a day.
"""
LEAVE = """---
tags: [policy]
---
# Annual leave policy

Every employee is entitled to twenty-eight days of paid annual leave per calendar year, including public holidays.

Leave must be requested through the HR portal at least two weeks in advance and approved by the line manager.
"""


@dataclass
class Command:
    text: str  # as written, continuation lines joined, the trailing comment dropped
    line: int  # in the README
    language: str
    expected: list[str] = field(default_factory=list)  # a console command's output lines

    @property
    def words(self) -> list[str]:
        """The command's words without leading ``NAME=value`` assignments."""
        words = shlex.split(self.text)
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words.pop(0)
        return words

    @property
    def runner(self) -> str | None:
        words = self.words
        if words[:1] == ["make"] and len(words) == 2:
            return "make"
        if words[:2] == ["docbot", "serve"]:
            return "serve"
        if words[:1] == ["docbot"]:
            return "docbot"
        if words[:1] == ["curl"]:
            return "curl"
        return None

    def __str__(self) -> str:
        return f"README line {self.line}: {self.text}"


def without_comment(line: str) -> str:
    """``line`` up to a ``#`` that starts a shell comment (outside quotes, at the start or after a space)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """Every fenced block: its language, the README line of its first line, its lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.fullmatch(r"(`{3,})\s*([\w+-]*).*", lines[i])
        if opening is None:
            i += 1
            continue
        fence, language, body, start = opening.group(1), opening.group(2).lower(), [], i + 2
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        i += 1
        yield language, start, body


def commands(text: str) -> list[Command]:
    found: list[Command] = []
    for language, start, body in blocks(text):
        if language not in SHELL_LANGUAGES:
            continue
        pending, first = "", 0
        for offset, line in enumerate(body):
            if language == "console":
                if line.startswith("$ "):
                    found.append(Command(line[2:].strip(), start + offset, language))
                elif found and found[-1].language == "console" and line.strip():
                    found[-1].expected.append(line.strip())
                continue
            code = without_comment(line)
            if not pending:
                first = start + offset
            if code.endswith("\\"):
                pending += code[:-1] + " "
                continue
            pending += code
            if pending.strip():
                found.append(Command(" ".join(pending.split()), first, language))
            pending = ""
    return found


COMMANDS = commands(README.read_text(encoding="utf-8"))


def of(runner: str) -> list[Command]:
    return [command for command in COMMANDS if command.runner == runner]


def make_env() -> dict[str, str]:
    """The environment for ``make -n``: nothing of an outer ``make test`` (its flags, its jobserver)."""
    return {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}}


# ---- fast tier: every command is covered; make targets -------------------------------------------------------------


def test_every_readme_command_has_a_runner() -> None:
    assert len(COMMANDS) >= 8, "the README's shell blocks were not found"
    without = [str(command) for command in COMMANDS if command.runner is None]
    assert not without, "README commands this test cannot run (add a runner in tests/test_readme.py): " + "; ".join(
        without
    )
    assert {"make", "docbot", "serve", "curl"} <= {command.runner for command in COMMANDS}


def test_the_readme_shows_the_test_command_ci_runs() -> None:
    """.ci/run runs the README's test command: ``make test``."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci
    assert "make test" in [command.text for command in COMMANDS]


@pytest.mark.parametrize("command", of("make"), ids=str)
def test_make_command_is_a_target_that_dry_runs(command: Command) -> None:
    target = command.words[1]
    done = subprocess.run(["make", "-n", target], cwd=ROOT, env=make_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: make -n {target} failed:\n{done.stdout}\n{done.stderr}"
    recipe = done.stdout
    if target == "run":  # what the serve runner below starts, after indexing seeds/
        assert "docbot index seeds" in recipe and "docbot serve" in recipe, recipe
    if target == "test":
        assert "pytest" in recipe and '-m ""' in recipe, recipe


# ---- server tier: the docbot commands for real -----------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder holding what the README's commands name, its environment, and seeds/ indexed (as make run does)."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(SEEDS, work / "seeds")
    (work / "tests" / "data").mkdir(parents=True)
    shutil.copyfile(EVAL_SET, work / "tests" / "data" / EVAL_SET.name)
    (work / "handbook").mkdir()
    (work / "handbook" / "expenses.md").write_text(HANDBOOK, encoding="utf-8")
    (work / "policies" / "hr").mkdir(parents=True)
    (work / "policies" / "hr" / "leave.md").write_text(LEAVE, encoding="utf-8")
    env = {
        **child_env(),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DOCBOT_DATA_DIR": str(work / ".docbot"),
    }
    run(Command("docbot index seeds", 0, "sh"), work, env)
    yield work, env


def run(command: Command, cwd: Path, env: dict[str, str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-c", command.text],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,  # docbot chat: the end of input ends the conversation
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.server
def test_docbot_commands_run_as_written(workspace: tuple[Path, dict[str, str]]) -> None:
    """In README order: an index a later command asks is made by an earlier one."""
    work, env = workspace
    assert of("docbot")
    for command in of("docbot"):
        done = run(command, work, env)
        printed = [line.strip() for line in done.stdout.splitlines()]
        missing = [line for line in command.expected if line not in printed]
        assert not missing, f"{command}: the README shows output it did not print: {missing}\n{done.stdout}"


@pytest.mark.server
@pytest.mark.parametrize("command", of("serve"), ids=str)
def test_serve_command_starts_and_answers_on_loopback(command: Command, workspace: tuple[Path, dict[str, str]]) -> None:
    work, env = workspace
    port = free_port()
    log = work / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", command.text],
            cwd=work,
            env={**env, "DOCBOT_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the shell and docbot stop together
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 300, process)
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=30).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=60).status_code == 200
    except Exception as exc:
        raise AssertionError(f"{command}: {exc}\n{log.read_text(errors='replace')[-3000:]}") from exc
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        stop_process(process)


@pytest.fixture(scope="module")
def server(workspace: tuple[Path, dict[str, str]]) -> Iterator[str]:
    """``docbot serve`` over the workspace, on a free loopback port: the server the README's curl commands ask."""
    work, env = workspace
    port = free_port()
    with open(work / "server.log", "wb") as out:
        process = subprocess.Popen(
            ["docbot", "serve"], cwd=work, env={**env, "DOCBOT_PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 300, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def shown_answer() -> str:
    """The answer the README's JSON example shows."""
    for language, _, body in blocks(README.read_text(encoding="utf-8")):
        if language == "json":
            found = re.search(r'"answer": "([^"]*)"', "\n".join(body))
            if found:
                return found.group(1)
    raise AssertionError("the README shows no JSON answer")


@pytest.mark.server
@pytest.mark.parametrize("command", of("curl"), ids=str)
def test_curl_command_answers_as_shown(command: Command, server: str, workspace: tuple[Path, dict[str, str]]) -> None:
    work, env = workspace
    assert README_ADDRESS in command.text, f"{command}: the README's curl examples ask {README_ADDRESS}"
    done = run(Command(command.text.replace(README_ADDRESS, server), command.line, command.language), work, env)
    reply = json.loads(done.stdout)
    assert reply["answer"] == shown_answer(), reply
    assert not reply["refused"] and reply["citations"] and reply["conversation_id"] is None
