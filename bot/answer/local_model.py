"""The local generator's process, supervised: started, checked, watched and restarted by docbot.

The GGUF runs in a process of its own (:mod:`bot.answer.llama_worker`: llama.cpp's OpenAI-compatible server on a
loopback port), so its crash (an illegal instruction on a CPU that lists more than it runs, the OOM killer, a
``kill -9``) is a notice, never an outage: the question in flight gets the extractive answer, ``/api/health``
reports the model down, and the process is started again with back-off (1 s, 2 s, 4 s... at most a minute; the
pause resets once a process has stayed up for a minute).

A process counts as up only once it has answered one token of a real chat completion. One that dies of SIGILL
before that is started again on the next, more conservative CPU variant of the portable build (``auto``, then
``haswell``, ``sse42``, ``x64``, those the build ships).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from bot.answer.errors import BackendError
from bot.answer.openai_client import openai_chat

log = logging.getLogger(__name__)

State = Literal["starting", "up", "down", "stopped"]

#: CPU variants tried after ``auto``, most capable first, when a process dies of SIGILL before it is up.
STEP_DOWN = ("haswell", "sse42", "x64")
#: Log files of the model process are cut back to nothing past this size.
LOG_LIMIT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ModelStatus:
    """What ``/api/health`` says of the local model."""

    state: State
    restarts: int
    last_exit: str | None
    cpu: str

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "restarts": self.restarts, "last_exit": self.last_exit, "cpu": self.cpu}


def describe_exit(code: int) -> str:
    """``killed by SIGILL`` for a signal, ``exited with status 1`` otherwise."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_ladder() -> list[str]:
    """``auto`` and the step-down variants this llama.cpp build ships (just ``auto`` for a non-portable build)."""
    from bot.answer.llama_worker import cpu_variants, llama_lib_dir

    shipped = cpu_variants(llama_lib_dir())
    return ["auto", *(variant for variant in STEP_DOWN if variant in shipped)]


class LocalModel:
    """One supervised model process. :meth:`start` begins; :meth:`url` is where it answers, while it is up."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        log_path: Path,
        ready_timeout_s: float = 180.0,
        backoff_s: tuple[float, float] = (1.0, 60.0),
        worker: Sequence[str] = (sys.executable, "-m", "bot.answer.llama_worker"),
        ladder: Sequence[str] | None = None,
    ) -> None:
        """``worker``: the command that serves the model (llama_worker's arguments follow); ``ladder``: the CPU
        variants to try, in order (default: those this llama.cpp build ships, :func:`cpu_ladder`)."""
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.backoff_s = backoff_s
        self.worker = list(worker)
        self._ladder = list(ladder) if ladder is not None else cpu_ladder()
        self._rung = 0
        self._state: State = "stopped"
        self._restarts = 0
        self._last_exit: str | None = None
        self._url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._settled = threading.Event()  # the first start is over: up, or every variant failed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- what the rest of docbot sees ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and its watcher (once); returns at once, :meth:`wait_ready` waits."""
        with self._lock:
            if self._thread is not None:
                return
            self._state = "starting"
            self._thread = threading.Thread(target=self._supervise, name="docbot-local-model", daemon=True)
            self._thread.start()
        atexit.register(self.close)

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait until the first start is over; whether the model is up."""
        self._settled.wait(timeout_s)
        return self._state == "up"

    def status(self) -> ModelStatus:
        return ModelStatus(self._state, self._restarts, self._last_exit, self._ladder[self._rung])

    def url(self) -> str:
        """The model's OpenAI-compatible base URL. During the first start this waits for it (a one-shot
        ``docbot ask`` asks at once); afterwards, while the process is not up, :class:`BackendError` at once."""
        self._settled.wait(self.ready_timeout_s)
        url = self._url
        if self._state != "up" or url is None:
            why = f" ({self._last_exit})" if self._last_exit else ""
            raise BackendError(f"the local model is {self._state}{why}; docbot is starting it again")
        return url

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def close(self) -> None:
        """Stop watching and end the process."""
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._state = "stopped"
        self._settled.set()

    # --- the watcher --------------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        pause = self.backoff_s[0]
        while not self._stop.is_set():
            self._state = "starting"
            process, url = self._spawn()
            if self._ready(process, url):
                self._url, self._state = url, "up"
                self._settled.set()
                log.info("local model up at %s (cpu %s)", url, self._ladder[self._rung])
                began = time.monotonic()
                code = process.wait()
                if time.monotonic() - began > self.backoff_s[1]:
                    pause = self.backoff_s[0]  # it ran a while: this crash is not a crash loop
            else:
                if process.poll() is None:
                    process.kill()  # alive but not answering within ready_timeout_s
                code = process.wait()
                if code == -signal.SIGILL and self._rung + 1 < len(self._ladder) and not self._stop.is_set():
                    self._rung += 1  # the CPU traps on this variant: the next one, at once
                    self._note_exit(code, f"trying the CPU variant {self._ladder[self._rung]}")
                    continue
            if self._stop.is_set():
                return
            self._note_exit(code, f"starting it again in {pause:g} s")
            self._settled.set()  # a first start that failed: answers are extractive until a later one succeeds
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, self.backoff_s[1])

    def _note_exit(self, code: int, next_step: str) -> None:
        self._url, self._state = None, "down"
        self._last_exit = describe_exit(code)
        self._restarts += 1
        log.warning("the local model process %s; %s (log: %s)", self._last_exit, next_step, self.log_path)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        command = [*self.worker, "--model", str(self.model_path)]
        command += ["--port", str(port), "--n-ctx", str(self.n_ctx), "--cpu", self._ladder[self._rung]]
        command += ["--parent", str(os.getpid())]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists() and self.log_path.stat().st_size > LOG_LIMIT_BYTES:
            self.log_path.unlink()
        with open(self.log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            out.flush()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self._process = process
        return process, f"http://127.0.0.1:{port}/v1"

    def _ready(self, process: subprocess.Popen[bytes], url: str) -> bool:
        """Whether the process answers one token of a chat completion before ``ready_timeout_s``."""
        from bot.answer.llama_worker import MODEL_ALIAS

        body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 1}
        request = urllib.request.Request(
            f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline and process.poll() is None and not self._stop.is_set():
            try:
                with urllib.request.urlopen(request, timeout=max(1.0, deadline - time.monotonic())) as reply:
                    return bool(json.load(reply).get("choices"))
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                time.sleep(0.2)  # still loading: the port opens once the model is in memory
        return False


class SupervisedChat(BaseChatModel):
    """A LangChain chat model over the supervised process: each reply goes to wherever the process answers now,
    through the same OpenAI-compatible client as the ``openai`` generator."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    local: LocalModel
    max_tokens: int = 256
    temperature: float = 0.1
    timeout_s: float = 60.0

    @property
    def _llm_type(self) -> str:
        return "docbot-local"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        from bot.answer.llama_worker import MODEL_ALIAS

        chat = openai_chat(self.local.url(), MODEL_ALIAS, None, self.max_tokens, self.temperature, self.timeout_s)
        for chunk in chat.stream(messages, stop=stop):
            if run_manager and isinstance(chunk.content, str):
                run_manager.on_llm_new_token(chunk.content)
            yield ChatGenerationChunk(message=chunk)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(str(chunk.message.content) for chunk in self._stream(messages, stop, run_manager))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
