"""`python -m llama_cpp.server`, loading the model without weight repacking (llama.cpp's `--no-repack`).

llama-cpp-python's server has no setting for it, and on Intel CPUs with AMX llama.cpp's kernels for repacked
weights crash (llama.cpp issue 20824; see personaforge.native). As in personaforge.llama_worker, this process
loads one model only, so turning the extra buffer types off in the default model parameters is enough.
Run as ``python -m tests.dataset.llama_server --model FILE --host 127.0.0.1 --port N ...`` (the server's flags).
"""

from __future__ import annotations

import runpy


def main() -> None:
    from personaforge.llama_worker import disable_weight_repacking

    disable_weight_repacking()
    # sys.argv is left as it is: the server's own argument parser reads the flags.
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
