"""Helpers for tests that need the real server on 127.0.0.1 and Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def child_env() -> dict[str, str]:
    """The environment for a docbot process a test starts: neither the developer's DOCBOT_* settings nor a
    GRADIO_TEMP_DIR that an in-process app of an earlier test set (create_app points Gradio's cache into its data
    directory) reaches it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DOCBOT_") and k != "GRADIO_TEMP_DIR"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Terminate a server started by a test; kill it if it does not stop in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path


def wait_http(url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def seeds_with(workdir: Path, extra: dict[str, str]) -> Path:
    """A copy of seeds/ in ``workdir/docs`` with ``extra`` files (name → text) beside them."""
    docs = workdir / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    for name, text in extra.items():
        (docs / name).write_text(text)
    return docs


@contextmanager
def live_server(
    workdir: Path, env: dict[str, str] | None = None, docs: Path | None = None, timeout_s: float = 120
) -> Iterator[LiveServer]:
    """Index ``docs`` (default: seeds/) into ``workdir/data`` with the real CLI, then run ``docbot serve``."""
    port = free_port()
    data_dir = workdir / "data"
    full_env = {
        **child_env(),
        "DOCBOT_DATA_DIR": str(data_dir),
        "DOCBOT_PORT": str(port),
        "DOCBOT_HOST": "127.0.0.1",
        **(env or {}),
    }
    docbot = str(Path(sys.executable).with_name("docbot"))
    subprocess.run(
        [docbot, "index", str(docs or ROOT / "seeds")], cwd=workdir, env=full_env, check=True, capture_output=True
    )
    log = workdir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([docbot, "serve"], cwd=workdir, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/health", timeout_s, process)
        yield LiveServer(url, data_dir, process, log)
    finally:
        stop_process(process)


@dataclass
class ChromaServer:
    url: str
    path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process)


@contextmanager
def chroma_server(workdir: Path, timeout_s: float = 60) -> Iterator[ChromaServer]:
    """``chroma run`` on a free loopback port, its store in ``workdir/server-store``; stopped on exit."""
    port, path, log = free_port(), workdir / "server-store", workdir / "chroma.log"
    chroma = str(Path(sys.executable).with_name("chroma"))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ChromaServer(f"http://127.0.0.1:{port}", path, process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, f"chroma run exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{server.url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"chroma run did not answer: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


@dataclass
class PostgresServer:
    url: str  # an SQLAlchemy URL for DOCBOT_DATABASE_URL
    data_dir: Path
    run_as: list[str]
    pg_ctl: str

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries (package ``postgresql``; make test installs it)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("Debian's postgresql is not installed: apt-get install postgresql (make test does)")
    return found[-1].parent


@contextmanager
def postgres_server(timeout_s: float = 60) -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster on a free loopback port (trust auth, user docbot, database docbot).

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` account, in a fresh folder under the
    system temp dir (pytest's tmp_path is private to root). Stopped and deleted on exit.
    """
    import tempfile

    bindir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="docbot-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "docbot", "-E", "UTF8"],
            capture_output=True,
            check=True,
            timeout=timeout_s,
        )
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"],
            capture_output=True,
            check=True,
            timeout=timeout_s,
        )
        server = PostgresServer(
            f"postgresql+psycopg://docbot@127.0.0.1:{port}/docbot", data, run_as, str(bindir / "pg_ctl")
        )
        try:
            subprocess.run(
                [*run_as, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "docbot", "docbot"],
                capture_output=True,
                check=True,
                timeout=timeout_s,
            )
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stored_votes(data_dir: Path) -> list[dict[str, Any]]:
    """The votes a server with the default state database (SQLite in ``data_dir``) has stored, oldest first."""
    from bot.state.database import Database
    from bot.state.feedback import FeedbackStore

    database = Database.open(None, data_dir)
    try:
        return list(FeedbackStore(database).records())
    finally:
        database.close()


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError(
            "Debian's chromium is not installed: apt-get install chromium chromium-driver (make test does)"
        )
    return path


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium from Debian, driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
