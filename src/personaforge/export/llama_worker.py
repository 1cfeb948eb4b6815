"""Moved to personaforge.llama_worker (the foundation), so evaluation can run llama.cpp in a child too; kept for
imports."""

import sys

from personaforge.llama_worker import (  # noqa: F401 - re-exported
    LLAMA_CPP_MISSING,
    LlamaFailed,
    LlamaJob,
    llama_cpp_problem,
    main,
    run_job,
)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
