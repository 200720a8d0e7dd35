"""The package's imports, read from its source: no import circles, and only ``eventml/kafka/`` imports a
Kafka client."""

from __future__ import annotations

import ast
from pathlib import Path

import eventml

PACKAGE = Path(eventml.__file__).parent
KAFKA_CLIENTS = ("kafka", "confluent_kafka")
#: modules that may import a Kafka client outside eventml/kafka/: none
CLIENT_IMPORT_EXCEPTIONS: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> list[str]:
    """Every module ``name`` imports, anywhere in it (module level, functions, methods), as written: for
    ``from a.b import c`` both ``a.b`` and ``a.b.c`` (c may be a module); relative imports made absolute."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name resolves to its longest known module)."""
    modules = sources()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in imported(name, path):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name and target != "eventml":
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_is_read_from_the_source():
    graph = import_graph()
    assert len(graph) > 50
    assert "eventml.dlq" in graph["eventml.consumer"]  # module level
    assert "eventml.kafka.clients" in graph["eventml.kafka.node"]  # inside a method
    assert "eventml.cli.common" in graph["eventml.cli.live"]


def test_the_cycle_finder_finds_a_circle_and_only_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_only_eventml_kafka_imports_a_kafka_client():
    offenders = []
    for name, path in sources().items():
        if name.startswith("eventml.kafka.") or name == "eventml.kafka" or name in CLIENT_IMPORT_EXCEPTIONS:
            continue
        offenders += [f"{name} imports {target}" for target in imported(name, path)
                      if target.split(".")[0] in KAFKA_CLIENTS]
    assert offenders == []
