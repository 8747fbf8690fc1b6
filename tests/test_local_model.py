"""The local model's supervised process (bot.answer.local_model), against a stand-in worker (tests/fake_llm_worker.py):
started and checked, stepped down a CPU variant when it traps at start, restarted with back-off when it dies, and
never the cause of a failed question. The real llama.cpp worker is in tests/test_local_model_live.py."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from bot.answer.errors import BackendError
from bot.answer.local_model import LocalModel, SupervisedChat, describe_exit

FAKE = (sys.executable, str(Path(__file__).with_name("fake_llm_worker.py")))
LADDER = ("auto", "haswell", "x64")


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., LocalModel]]:
    made: list[LocalModel] = []

    def make(**spec: Any) -> LocalModel:
        model = tmp_path / f"model-{len(made)}.json"
        model.write_text(json.dumps(spec))
        local = LocalModel(
            model, n_ctx=512, log_path=tmp_path / "model.log", backoff_s=(0.2, 1.0), worker=FAKE, ladder=LADDER
        )
        made.append(local)
        local.start()
        return local

    yield make
    for local in made:
        local.close()


def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def reply(local: LocalModel) -> str:
    return "".join(str(chunk.content) for chunk in SupervisedChat(local=local).stream([HumanMessage("hi")]))


def test_the_model_is_up_once_it_answers_and_replies_through_the_openai_client(supervised: Any) -> None:
    local = supervised(reply="the answer")
    assert local.wait_ready(30)
    assert local.status().as_dict() == {"state": "up", "restarts": 0, "last_exit": None, "cpu": "auto"}
    assert reply(local) == "the answer (cpu auto)"


def test_a_cpu_that_traps_at_start_steps_down_a_variant(supervised: Any) -> None:
    local = supervised(reply="ok", trap_on=["auto", "haswell"])
    assert local.wait_ready(30)
    status = local.status()
    assert (status.state, status.cpu, status.restarts, status.last_exit) == ("up", "x64", 2, "killed by SIGILL")
    assert reply(local) == "ok (cpu x64)"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGILL])
def test_a_process_that_dies_is_down_at_once_then_restarted(supervised: Any, sig: signal.Signals) -> None:
    local = supervised(reply="back")
    assert local.wait_ready(30)
    first = local.pid
    assert first is not None
    os.kill(first, sig)
    until(lambda: local.status().state != "up")
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"killed by {sig.name}"):
        local.url()
    assert time.monotonic() - started < 10  # a question asked meanwhile does not wait for the restart (180 s)
    until(lambda: local.status().state == "up")
    assert local.pid not in (None, first) and local.status().restarts == 1
    assert local.status().cpu == "auto"  # a crash after the start is not the CPU's fault: same variant
    assert reply(local) == "back (cpu auto)"


def test_a_model_that_never_starts_leaves_answers_to_the_fallback(supervised: Any) -> None:
    local = supervised(exit_code=3)
    assert not local.wait_ready(30)  # the first start is over: docbot serves meanwhile
    status = local.status()
    assert status.state in {"down", "starting"} and status.last_exit == "exited with status 3"
    with pytest.raises(BackendError, match="status 3"):
        reply(local)
    until(lambda: local.status().restarts >= 3)  # still trying, with back-off


def test_close_ends_the_process(supervised: Any) -> None:
    local = supervised()
    assert local.wait_ready(30)
    pid = local.pid
    assert pid is not None
    local.close()
    assert local.status().state == "stopped" and local.pid is None
    until(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text())


def test_exits_are_described() -> None:
    assert describe_exit(-signal.SIGILL) == "killed by SIGILL"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with status 1"
