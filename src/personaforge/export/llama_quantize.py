"""`python -m personaforge.export.llama_quantize IN OUT TYPE`: llama-quantize through llama-cpp-python.

llama.cpp's llama-quantize binary is a thin command line over the library's ``llama_model_quantize``; the
llama-cpp-python package ships that library, so where it is installed K-quants need no separate llama.cpp
build. Run as a subprocess: the library logs to stderr and holds the whole model in memory while it works.
"""

from __future__ import annotations

import os
import sys


def quantize(source: str, out: str, kind: str) -> int:
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}", None)
    if ftype is None:
        print(f"error: llama-cpp-python {llama_cpp.__version__} has no quantization type {kind}", file=sys.stderr)
        return 2
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = os.cpu_count() or 1
    code = llama_cpp.llama_model_quantize(source.encode(), out.encode(), params)
    if code != 0:
        print(f"error: llama_model_quantize returned {code}", file=sys.stderr)
    return 1 if code else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m personaforge.export.llama_quantize IN.gguf OUT.gguf TYPE")
    sys.exit(quantize(*sys.argv[1:4]))
