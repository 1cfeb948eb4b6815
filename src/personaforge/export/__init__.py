"""Exporting a run: GGUF files (gguf.py, checked by parity.py), Ollama Modelfiles (ollama.py), the Hub (hub.py)."""
