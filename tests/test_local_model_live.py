"""A real `docbot serve` with the local generator (SmolLM2 through the portable llama.cpp build, in its supervised
process): the model process is killed in the middle of an answer, with SIGKILL and with SIGILL (what a CPU that
traps on an instruction sends). The question in flight is answered from the passages with a notice, /api/health
stays 200 and reports the model down, and the next question after the restart is written by the model again."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import live
import pytest

pytestmark = [pytest.mark.server, pytest.mark.llm, pytest.mark.model]
pytest.importorskip("llama_cpp", reason="needs the [local] extra: pip install -e '.[local]'")

QUESTION = "Why is ISIS growing again in Iraq?"


def model_pid(server_pid: int) -> int:
    """The pid of the model process that ``docbot serve`` started (its child running bot.answer.llama_worker)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == server_pid and b"bot.answer.llama_worker" in cmdline:
            return int(entry.name)
    raise AssertionError("no model process under docbot serve")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def health(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/health", timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ask_into(url: str, replies: list[httpx.Response]) -> None:
    replies.append(httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=300))


def until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_killed_model_process_is_a_notice_not_an_outage(tmp_path: Path) -> None:
    env = {"DOCBOT_GENERATOR": "local", "DOCBOT_LLM_MAX_TOKENS": "256", "DOCBOT_LLM_TIMEOUT_S": "300"}
    with live.live_server(tmp_path, env=env, timeout_s=300) as server:
        model = health(server.url)["model"]
        assert model["state"] == "up" and model["restarts"] == 0, model
        for restarts, sig in enumerate((signal.SIGKILL, signal.SIGILL), start=1):
            pid = model_pid(server.process.pid)
            idle = cpu_ticks(pid)
            replies: list[httpx.Response] = []
            asking = threading.Thread(target=ask_into, args=(server.url, replies))
            asking.start()
            until(lambda pid=pid, idle=idle: cpu_ticks(pid) > idle + 2, 120, "the model never started working")
            os.kill(pid, sig)  # the model is reading the passages or writing: the middle of an answer
            until(lambda: health(server.url)["model"]["state"] != "up", 10, "health never reported the model down")
            asking.join(300)
            answer = replies[0].json()
            assert replies[0].status_code == 200, answer
            assert answer["citations"] and not answer["refused"], answer
            assert answer["notice"] and ("failed (" in answer["notice"] or "stopped early (" in answer["notice"])
            if not answer["generator"].startswith("local"):
                assert answer["generator"] == "extractive (fallback from local:SmolLM2-135M-Instruct.Q4_1.gguf)"
            model = health(server.url)["model"]
            assert model["restarts"] == restarts and model["last_exit"] == f"killed by {sig.name}", model

            until(lambda: health(server.url)["model"]["state"] == "up", 120, "the model was not started again")
            assert server.process.poll() is None
            again = model_pid(server.process.pid)
            assert again != pid
            before = cpu_ticks(again)
            answer = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION}, timeout=300).json()
            assert cpu_ticks(again) > before, "the question after the restart did not reach the model"
            assert answer["citations"], answer
            assert not answer["notice"] or ("failed" not in answer["notice"] and "stopped" not in answer["notice"])
