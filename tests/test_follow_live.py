"""A running `docbot serve` follows a Chroma server that a separate `docbot index` run (another data folder: another
machine, say) writes to: the new document is cited and the server's own BM25 side is rebuilt within seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import live
import pytest

from index.lexical import current_fingerprint

pytestmark = [pytest.mark.server, pytest.mark.model]

DOCBOT = str(Path(sys.executable).with_name("docbot"))
NOTE = (
    "Vellmoor quarry report. The quarrymen of Vellmoor split the granite with wedges of seasoned oak. "
    "The Vellmoor quarry closed in 1911 after the lower gallery flooded."
)
QUESTION = "When did the Vellmoor quarry close?"
#: The issue's bound on how soon a replica sees a change made elsewhere.
FOLLOW_S = 5.0


def test_a_served_bot_cites_a_document_indexed_by_another_process_within_seconds(tmp_path: Path) -> None:
    with live.chroma_server(tmp_path) as chroma:
        (tmp_path / "serve").mkdir()
        with live.live_server(tmp_path / "serve", env={"DOCBOT_CHROMA_URL": chroma.url}) as server:
            before = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION}, timeout=120).json()
            assert all("quarry" not in c["source"] for c in before["citations"])

            docs = tmp_path / "elsewhere" / "docs"
            docs.mkdir(parents=True)
            (docs / "quarry.txt").write_text(NOTE)
            env = live.child_env() | {
                "DOCBOT_CHROMA_URL": chroma.url,
                "DOCBOT_DATA_DIR": str(tmp_path / "elsewhere" / "data"),
            }
            subprocess.run([DOCBOT, "index", str(docs)], env=env, check=True, capture_output=True, timeout=300)
            indexed = time.monotonic()

            cited: list[str] = []
            while time.monotonic() - indexed < FOLLOW_S:
                answer = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION}, timeout=30).json()
                cited = [c["source"] for c in answer["citations"]]
                followed = current_fingerprint(server.data_dir / "bm25") == current_fingerprint(
                    tmp_path / "elsewhere" / "data" / "bm25"
                )
                if "quarry.txt" in cited and followed:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"not followed within {FOLLOW_S} s: cited {cited}, log: {server.log.read_text()[-2000:]}")
            assert "1911" in answer["answer"]
