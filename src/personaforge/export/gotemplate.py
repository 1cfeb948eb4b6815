"""A small renderer for the subset of Go's text/template that our Ollama TEMPLATEs use.

Ollama renders a Modelfile's TEMPLATE with Go's text/template. To check, before a Modelfile is written, that
its TEMPLATE reproduces the training prompt format byte for byte, we render it here with the same rules:

- text, ``{{ ... }}`` actions, ``{{-`` / ``-}}`` whitespace trimming, ``{{/* comments */}}``;
- ``if`` / ``else if`` / ``else`` / ``end``, ``range [$i, $x :=] PIPE``, ``$x := PIPE``, ``$x = PIPE``;
- fields (``.System``, ``$.Messages``, ``.Role``, ``$x.Content``), variables, string / number / bool literals,
  parenthesised calls and the functions ``eq ne and or not len slice``.

Anything outside the subset is a ``GoTemplateError``: better to refuse than to render it differently from Go.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class GoTemplateError(ValueError):
    """The template uses something outside the supported subset, or is malformed."""


# ------------------------------------------------------------------------------------------------- lexing
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_GO_SPACE = " \t\r\n"  # what Go's trim markers remove


def _split(source: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", body)] with trim markers applied to the neighbouring text."""
    items: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if trim_next:
            text = text.lstrip(_GO_SPACE)
        if match.group(1):
            text = text.rstrip(_GO_SPACE)
        if text:
            items.append(("text", text))
        body = match.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            items.append(("action", body))
        trim_next = bool(match.group(3))
        pos = match.end()
    text = source[pos:]
    if trim_next:
        text = text.lstrip(_GO_SPACE)
    if "{{" in text:
        raise GoTemplateError(f"unclosed action near {text[text.index('{{'):][:30]!r}")
    if text:
        items.append(("text", text))
    return items


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<raw>`[^`]*`) |
    (?P<num>-?\d+) |
    (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*) |
    (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.) |
    (?P<op>:=|=|\(|\)|,) |
    (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v"}


def _go_string(literal: str) -> str:
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = body[i + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif code in "uU":
            width = 4 if code == "u" else 8
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        elif code == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        else:
            raise GoTemplateError(f"unsupported escape \\{code} in {literal}")
    return "".join(out)


def _tokens(body: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        match = _TOKEN.match(body, pos)
        if match is None or match.end() == pos:
            raise GoTemplateError(f"cannot parse {body[pos:]!r} in {{{{ {body} }}}}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


# ------------------------------------------------------------------------------------------------ parsing
@dataclass
class _Lit:
    value: Any


@dataclass
class _Field:
    base: str | None  # None: dot; "$" or "$name": a variable
    path: tuple[str, ...]


@dataclass
class _Call:
    name: str
    args: list


@dataclass
class _If:
    branches: list[tuple[Any, list]]  # (condition, body)
    otherwise: list = field(default_factory=list)


@dataclass
class _Range:
    key: str | None
    value: str | None
    pipe: Any
    body: list


@dataclass
class _Assign:
    name: str
    pipe: Any
    declare: bool


@dataclass
class _Print:
    pipe: Any


FUNCTIONS = ("eq", "ne", "and", "or", "not", "len", "slice")


def _parse_operand(tokens: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
    kind, value = tokens[pos]
    if kind == "str":
        return _Lit(_go_string(value)), pos + 1
    if kind == "raw":
        return _Lit(value[1:-1]), pos + 1
    if kind == "num":
        return _Lit(int(value)), pos + 1
    if kind == "field":
        return _Field(None, tuple(p for p in value.split(".") if p)), pos + 1
    if kind == "var":
        name, *path = value.split(".")
        return _Field(name, tuple(path)), pos + 1
    if kind == "ident" and value in ("true", "false"):
        return _Lit(value == "true"), pos + 1
    if kind == "ident" and value == "nil":
        return _Lit(None), pos + 1
    if kind == "op" and value == "(":
        expr, pos = _parse_command(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos] != ("op", ")"):
            raise GoTemplateError("missing ')'")
        return expr, pos + 1
    if kind == "ident" and value in FUNCTIONS:
        return _Call(value, []), pos + 1  # a bare function name: called with no arguments
    raise GoTemplateError(f"unsupported term {value!r}")


def _parse_command(tokens: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
    """A function call with arguments, or a single operand; stops at ')' or the end."""
    kind, value = tokens[pos]
    if kind == "ident" and value in FUNCTIONS:
        args, pos = [], pos + 1
        while pos < len(tokens) and tokens[pos] != ("op", ")"):
            arg, pos = _parse_operand(tokens, pos)
            args.append(arg)
        return _Call(value, args), pos
    if kind == "ident" and value not in ("true", "false", "nil"):
        raise GoTemplateError(f"unsupported function {value!r} (supported: {', '.join(FUNCTIONS)})")
    operand, pos = _parse_operand(tokens, pos)
    if pos < len(tokens) and tokens[pos] != ("op", ")"):
        raise GoTemplateError(f"unexpected {tokens[pos][1]!r} after an operand")
    return operand, pos


def _parse_pipe(tokens: list[tuple[str, str]]) -> Any:
    if not tokens:
        raise GoTemplateError("empty action")
    expr, pos = _parse_command(tokens, 0)
    if pos != len(tokens):
        raise GoTemplateError(f"unexpected {tokens[pos][1]!r}")
    return expr


def _parse_action(body: str):
    """('if', pipe) | ('elseif', pipe) | ('else',) | ('end',) | ('range', key, value, pipe) | node."""
    tokens = _tokens(body)
    if not tokens:
        raise GoTemplateError("empty action")
    head = tokens[0]
    if head == ("ident", "if"):
        return ("if", _parse_pipe(tokens[1:]))
    if head == ("ident", "else"):
        if len(tokens) > 1 and tokens[1] == ("ident", "if"):
            return ("elseif", _parse_pipe(tokens[2:]))
        if len(tokens) > 1:
            raise GoTemplateError(f"unsupported else form: {body}")
        return ("else",)
    if head == ("ident", "end"):
        return ("end",)
    if head == ("ident", "range"):
        rest = tokens[1:]
        names = []
        if ("op", ":=") in rest:
            split = rest.index(("op", ":="))
            names = [t[1] for t in rest[:split] if t != ("op", ",")]
            rest = rest[split + 1:]
        if len(names) > 2 or any(not n.startswith("$") for n in names):
            raise GoTemplateError(f"unsupported range form: {body}")
        key, value = (names + [None, None])[:2] if len(names) == 2 else (None, names[0] if names else None)
        return ("range", key, value, _parse_pipe(rest))
    if head[0] in ("ident",) and head[1] in ("with", "template", "define", "block", "break", "continue"):
        raise GoTemplateError(f"unsupported action '{head[1]}'")
    if len(tokens) >= 2 and head[0] == "var" and "." not in head[1] and tokens[1] in (("op", ":="), ("op", "=")):
        return _Assign(head[1], _parse_pipe(tokens[2:]), tokens[1][1] == ":=")
    return _Print(_parse_pipe(tokens))


def _parse(items: list[tuple[str, str]]) -> list:
    """Nested node lists from the flat item list."""
    root: list = []
    stack: list[tuple[Any, list]] = [(None, root)]  # (open block, list being filled)
    for kind, content in items:
        body = stack[-1][1]
        if kind == "text":
            body.append(_Lit(content))
            continue
        action = _parse_action(content)
        if isinstance(action, tuple):
            tag = action[0]
            if tag == "if":
                node = _If([(action[1], [])])
                body.append(node)
                stack.append((node, node.branches[0][1]))
            elif tag == "range":
                node = _Range(action[1], action[2], action[3], [])
                body.append(node)
                stack.append((node, node.body))
            elif tag in ("elseif", "else"):
                block = stack[-1][0]
                if not isinstance(block, _If) or block.otherwise:
                    raise GoTemplateError("'else' outside an 'if'")
                stack.pop()
                if tag == "elseif":
                    block.branches.append((action[1], []))
                    stack.append((block, block.branches[-1][1]))
                else:
                    block.otherwise = [_Lit("")]  # marks the else branch as started
                    stack.append((block, block.otherwise))
            else:  # end
                if len(stack) == 1:
                    raise GoTemplateError("'end' without a block")
                stack.pop()
        else:
            body.append(action)
    if len(stack) != 1:
        raise GoTemplateError("missing 'end'")
    return root


# ---------------------------------------------------------------------------------------------- executing
def _truth(value: Any) -> bool:
    # Go: false, 0, nil and empty strings / slices / maps are false.
    return bool(value)


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def lookup(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise GoTemplateError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise GoTemplateError(f"undefined variable {name}")


def _get(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        if name not in value:
            raise GoTemplateError(f"no field {name}")
        return value[name]
    if hasattr(value, name):
        return getattr(value, name)
    raise GoTemplateError(f"no field {name} on {type(value).__name__}")


def _eval(node: Any, dot: Any, scope: _Scope) -> Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Field):
        value = dot if node.base is None else scope.lookup(node.base)
        for name in node.path:
            value = _get(value, name)
        return value
    if isinstance(node, _Call):
        return _call(node, dot, scope)
    raise GoTemplateError(f"cannot evaluate {node!r}")


def _call(node: _Call, dot: Any, scope: _Scope) -> Any:
    name, args = node.name, node.args
    if name == "and" or name == "or":  # short-circuit; returns the deciding argument, as Go does
        if not args:
            raise GoTemplateError(f"{name} needs arguments")
        value = None
        for arg in args:
            value = _eval(arg, dot, scope)
            if _truth(value) != (name == "and"):
                return value
        return value
    values = [_eval(a, dot, scope) for a in args]
    if name == "not":
        _arity(name, values, 1)
        return not _truth(values[0])
    if name == "eq":
        if len(values) < 2:
            raise GoTemplateError("eq needs at least 2 arguments")
        return any(_same(values[0], v) for v in values[1:])
    if name == "ne":
        _arity(name, values, 2)
        return not _same(values[0], values[1])
    if name == "len":
        _arity(name, values, 1)
        return len(values[0])
    if name == "slice":
        if not 1 <= len(values) <= 3:
            raise GoTemplateError("slice needs 1 to 3 arguments")
        target, *bounds = values
        start = bounds[0] if bounds else 0
        end = bounds[1] if len(bounds) > 1 else len(target)
        if not 0 <= start <= end <= len(target):
            raise GoTemplateError(f"slice index out of range: {start}:{end} of {len(target)}")
        return target[start:end]
    raise GoTemplateError(f"unsupported function {name}")


def _arity(name: str, values: list, count: int) -> None:
    if len(values) != count:
        raise GoTemplateError(f"{name} takes {count} argument(s), got {len(values)}")


def _same(a: Any, b: Any) -> bool:
    # Go's eq refuses to compare values of different basic kinds.
    if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
        raise GoTemplateError(f"incompatible types for comparison: {a!r} and {b!r}")
    return a == b


def _run(nodes: list, dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Lit):
            out.append(node.value)
        elif isinstance(node, _Print):
            out.append(_text(_eval(node.pipe, dot, scope)))
        elif isinstance(node, _Assign):
            value = _eval(node.pipe, dot, scope)
            if node.declare:
                scope.frames[-1][node.name] = value
            else:
                scope.assign(node.name, value)
        elif isinstance(node, _If):
            chosen = node.otherwise
            for condition, body in node.branches:
                if _truth(_eval(condition, dot, scope)):
                    chosen = body
                    break
            scope.frames.append({})
            _run(chosen, dot, scope, out)
            scope.frames.pop()
        elif isinstance(node, _Range):
            items = _eval(node.pipe, dot, scope)
            if isinstance(items, Mapping) or not isinstance(items, Sequence) or isinstance(items, str):
                raise GoTemplateError("range over something that is not a list")
            for index, item in enumerate(items):
                frame: dict[str, Any] = {}
                if node.key is not None:
                    frame[node.key] = index
                    frame[node.value] = item
                elif node.value is not None:
                    frame[node.value] = item
                scope.frames.append(frame)
                _run(node.body, item, scope, out)
                scope.frames.pop()
        else:  # pragma: no cover - the parser makes nothing else
            raise GoTemplateError(f"cannot run {node!r}")


def parse(source: str) -> list:
    """Parse a template (GoTemplateError when it uses anything outside the subset)."""
    return _parse(_split(source))


def render(source: str, data: Mapping[str, Any]) -> str:
    """Render ``source`` with ``data`` as dot, e.g. {"System": ..., "Messages": [{"Role": ..., "Content": ...}]}."""
    out: list[str] = []
    _run(parse(source), data, _Scope(data), out)
    return "".join(out)
