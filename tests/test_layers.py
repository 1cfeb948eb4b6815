"""The package's import graph, read from the source with `ast`: no cycles, and no import from an earlier layer to a
later one. Data flows transcripts → dataset → train → merge → evaluate → leaderboard → apps, and imports flow the
same way. docs/architecture.md explains the layers; the order itself is written only here.

Every import counts, the ones inside functions too: the code imports heavy libraries lazily, and a lazy import of a
later stage is still a dependency on it (the config ↔ legacy circle was one). Only the top layer (the command line and
the pipeline that drives all stages) may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "personaforge"
SRC = Path(__file__).resolve().parents[1] / "src"

# Earliest first. A module belongs to the layer of the longest prefix listed for it. Within a layer any direction
# is allowed as long as there is no cycle.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # errors, files, YAML, the prompt format, the config schema (and the original's flat configs mapped onto it),
    # persona cards, the home folder: everything a stage may use; imports no stage.
    ("foundation", ("personaforge", "personaforge.errors", "personaforge.redaction", "personaforge.home",
                    "personaforge.fileio", "personaforge.yamlio", "personaforge.prompting", "personaforge.config",
                    "personaforge.personas")),
    # finding, fetching and loading models, the CPU dtype probe, llama.cpp, generation, sentence embeddings
    ("runtime", ("personaforge.models", "personaforge.cpu_dtype", "personaforge.native", "personaforge.llama_worker",
                 "personaforge.generate", "personaforge.embeddings")),
    ("transcripts", ("personaforge.transcripts",)),
    ("dataset", ("personaforge.dataset",)),
    ("train", ("personaforge.train", "personaforge.run_personas")),
    ("merge", ("personaforge.merge",)),
    ("evaluate", ("personaforge.evaluate",)),
    # people's blind votes on eval answers, and the ratings from them (the leaderboard shows them)
    ("arena", ("personaforge.arena",)),
    ("leaderboard", ("personaforge.leaderboard",)),
    # what users run on a finished run or dataset: export/push, chat, the API server, the review studio and arena
    ("apps", ("personaforge.export", "personaforge.chat", "personaforge.serve", "personaforge.serving",
              "personaforge.studio")),
    # the command line and `persona run`, on top of everything
    ("interface", ("personaforge.cli", "personaforge.pipeline", "personaforge.__main__")),
]
TOP = LAYERS[-1][0]
# Only the interface layer talks to the terminal through these.
UI_LIBRARIES = ("typer", "rich")


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    # the package itself (its version) is foundation; "personaforge" is no prefix for the rest
    best = max((prefix for _, prefixes in LAYERS for prefix in prefixes
                if module == prefix or (prefix != PACKAGE and module.startswith(prefix + "."))), key=len, default=None)
    return None if best is None else next(i for i, (_, prefixes) in enumerate(LAYERS) if best in prefixes)


def imports(path: Path, module: str, modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported name) for every import in the file, at any depth; `from a import b` names a.b when that is a
    module of ours, else a. Relative imports are resolved against the module's package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                found.append((node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base))
    return found


def problems(src: Path = SRC) -> list[str]:
    files = {module_name(path, src): path for path in (src / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {module: set() for module in files}
    found: dict[str, None] = {}  # ordered and without repeats (`from x import a, b` is one message)
    for module, path in sorted(files.items()):
        here = layer_of(module)
        if here is None:
            found[f"{path.relative_to(src)}: {module} is in no layer; add it to LAYERS in {Path(__file__).name}"] = None
        for line, name in imports(path, module, set(files)):
            where = f"{path.relative_to(src)}:{line}"
            if name.split(".")[0] in UI_LIBRARIES and (here is None or LAYERS[here][0] != TOP):
                found[f"{where}: {module} imports {name}; only the {TOP} layer may use {'/'.join(UI_LIBRARIES)}"] = None
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            target = max((m for m in files if name == m or name.startswith(m + ".")), key=len)
            graph[module].add(target)
            there = layer_of(target)
            if here is not None and there is not None and there > here:
                found[f"{where}: {module} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]}), a later layer"] = None
    return [*found, *(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph))]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), in a readable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(_cycle_in(sorted(component), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete path start → … → start inside the component, so the message names real imports."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return component


def test_imports_follow_the_layers() -> None:
    found = problems()
    assert not found, "\n".join(found)


def test_the_checker_sees_a_later_layer_and_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "dataset").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text("")
    (package / "dataset" / "__init__.py").write_text("")
    (package / "dataset" / "a.py").write_text("def f():\n    from personaforge.leaderboard import x\n")
    (package / "dataset" / "b.py").write_text("from . import c\n")
    (package / "dataset" / "c.py").write_text("from .b import thing\n")
    (package / "leaderboard.py").write_text("import typer\n")
    (package / "stray.py").write_text("")
    found = problems(tmp_path)
    assert any("dataset.a (dataset) imports personaforge.leaderboard (leaderboard)" in p for p in found), found
    assert any(p.startswith("import cycle: personaforge.dataset.b -> personaforge.dataset.c") for p in found), found
    assert any("leaderboard imports typer" in p for p in found), found
    assert any("personaforge.stray is in no layer" in p for p in found), found
