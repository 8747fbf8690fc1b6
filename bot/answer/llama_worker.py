"""The local model's own process: llama.cpp's OpenAI-compatible server over one GGUF, on loopback.

Started and watched by :class:`bot.answer.local_model.LocalModel`, never imported by the docbot process itself:
``python -m bot.answer.llama_worker --model PATH --port N [--n-ctx N] [--cpu auto|haswell|x64|...]``.
A crash here (an illegal instruction, the kernel's OOM killer, a ``kill -9``) ends this process only.

docbot's build of llama-cpp-python is portable (``GGML_BACKEND_DL`` with ``GGML_CPU_ALL_VARIANTS``): the CPU code
is one shared library per x86-64 level, and this process loads one of them before the model. ``auto`` lets ggml
pick the best the CPU reports; a named variant (``haswell``, ``x64``...) is the step down the supervisor takes when
a CPU reports features that the machine then traps on.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path

#: The model name the worker's server answers to.
MODEL_ALIAS = "docbot-local"


def cpu_variants(lib_dir: Path) -> list[str]:
    """The CPU variants this llama.cpp build ships (``libggml-cpu-<variant>.so``); empty for a build with the CPU
    code linked in (no ``GGML_BACKEND_DL``)."""
    libraries = lib_dir.glob("libggml-cpu-*.so")
    return sorted(path.name.removeprefix("libggml-cpu-").removesuffix(".so") for path in libraries)


def llama_lib_dir() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


def _loaded_ggml(lib_dir: Path) -> ctypes.CDLL:
    """The libggml that llama_cpp's libllama loaded. A wheel holds ``libggml.so``, ``.so.0`` and ``.so.0.x.y`` as
    three copies, not links: opening another copy would give a second backend registry that libllama never reads."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rstrip("\n").split(maxsplit=5)[-1]
            if Path(path).name.startswith("libggml.so"):
                return ctypes.CDLL(path)
    return ctypes.CDLL(str(lib_dir / "libggml.so"))


def load_cpu_backend(lib_dir: Path, variant: str) -> None:
    """Register ggml's CPU backend: ``auto`` (the best variant for this CPU) or the named one. Call after
    ``import llama_cpp`` (which loads libllama and its libggml)."""
    if not cpu_variants(lib_dir):
        return  # the CPU code is linked into libggml itself
    ggml = _loaded_ggml(lib_dir)
    if variant == "auto":
        ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        ggml.ggml_backend_load_all_from_path(str(lib_dir).encode())
        return
    library = lib_dir / f"libggml-cpu-{variant}.so"
    if not library.is_file():
        raise SystemExit(f"llama_worker: no CPU variant {variant!r} in {lib_dir} (have: {cpu_variants(lib_dir)})")
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    if not ggml.ggml_backend_load(str(library).encode()):
        raise SystemExit(f"llama_worker: ggml could not load {library}")


def die_with_parent(parent: int) -> None:
    """Have the kernel end this process when its parent ends (Linux), so a killed docbot leaves no model behind."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request above took effect
        raise SystemExit("llama_worker: docbot, which started this process, has ended")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.answer.llama_worker", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="the GGUF file")
    parser.add_argument("--port", type=int, required=True, help="the loopback port to serve on")
    parser.add_argument("--n-ctx", type=int, default=4096, help="context window in tokens")
    parser.add_argument("--cpu", default="auto", help="ggml CPU variant: auto, or one the build ships")
    parser.add_argument("--parent", type=int, help="end this process when the process with this pid ends")
    args = parser.parse_args(argv)
    if args.parent is not None:
        die_with_parent(args.parent)

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    load_cpu_backend(llama_lib_dir(), args.cpu)  # llama_cpp.server.app imported llama_cpp and its libraries
    app = create_app(
        # interrupt_requests off: a second user's question waits its turn instead of cutting the first one's reply
        server_settings=ServerSettings(host="127.0.0.1", port=args.port, interrupt_requests=False),
        model_settings=[
            ModelSettings(model=str(args.model), model_alias=MODEL_ALIAS, n_ctx=args.n_ctx, seed=0, verbose=False)
        ],
    )
    print(f"llama_worker: serving {args.model.name} on 127.0.0.1:{args.port} (cpu {args.cpu})", file=sys.stderr)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
