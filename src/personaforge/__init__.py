"""personaforge: turn interview and documentary transcripts into persona LLMs."""

__version__ = "0.1.0"
