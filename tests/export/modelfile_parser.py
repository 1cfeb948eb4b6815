"""Ollama's Modelfile parser, re-written from its state machine (ollama/parser/parser.go), for round-trip tests.

It reproduces the parts our Modelfiles rely on: commands and PARAMETER names, "..." and \"\"\"...\"\"\" values
(a value ends at whitespace once its quotes are balanced, so quoted values may span lines), # comments.
"""

from __future__ import annotations


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith('"""'):
        if len(text) >= 6 and text.endswith('"""'):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True


def parse_modelfile(source: str) -> list[tuple[str, str]]:
    """[(command, value)]; PARAMETER commands come back as (name, value)."""
    commands: list[tuple[str, str]] = []
    state, buffer, name = "nil", "", ""
    for char in source + "\n":
        if state == "nil":
            if char == "#":
                state = "comment"
            elif not char.isspace():
                state, buffer = "name", char
        elif state == "comment":
            if char == "\n":
                state = "nil"
        elif state == "name":
            if char.isalpha():
                buffer += char
            elif char in " \t":
                name = buffer.lower()
                state, buffer = ("parameter" if name == "parameter" else "value"), ""
            else:
                raise ValueError(f"invalid command {buffer + char!r}")
        elif state == "parameter":
            if char.isalnum() or char == "_":
                buffer += char
            elif char in " \t":
                name, state, buffer = buffer, "value", ""
            else:
                raise ValueError(f"unexpected {char!r} in a parameter name")
        elif state == "value":
            if char in " \t\r\n":
                value, ok = _unquote(buffer.strip(" \t\r\n"))
                if not ok or char in " \t":
                    buffer += char
                    continue
                commands.append((name, value))
                state, buffer = "nil", ""
            elif char.isprintable():
                buffer += char
    if state == "value":
        raise ValueError("unterminated value")
    return commands
