"""A stand-in for ``bot.answer.llama_worker`` in the fast tier: the same arguments, a tiny OpenAI-compatible server.

The ``--model`` file is JSON that says how to behave: ``{"reply": "...", "trap_on": ["auto"], "exit_code": 3}``.
``trap_on``: CPU variants on which the process dies of SIGILL before serving (a CPU that lists what it cannot run);
``exit_code``: exit at once with this status (a model file that does not load); ``delay_s``: a pause between the
streamed words.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int)
    parser.add_argument("--cpu", default="auto")
    parser.add_argument("--parent", type=int)
    args = parser.parse_args()
    spec: dict[str, Any] = json.loads(args.model.read_text())
    if args.cpu in spec.get("trap_on", []):
        os.kill(os.getpid(), signal.SIGILL)
    if "exit_code" in spec:
        raise SystemExit(spec["exit_code"])
    words = f"{spec.get('reply', 'yes')} (cpu {args.cpu})".split(" ")
    delay = float(spec.get("delay_s", 0.0))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not body.get("stream"):
                reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words)}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for n, word in enumerate(words):
                piece = word if n == 0 else " " + word
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                chunk["choices"] = [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(delay)
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
