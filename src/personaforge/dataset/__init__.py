"""The data stage: transcripts + persona cards → train/eval records."""
