"""The code's shape, as issue 12 set it: thin entry points, short functions, no import cycle, and
the library layers in one direction (`predictor` builds on `supernet`, never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("supernet", "predictor")


def sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def code_lines(path: Path) -> int:
    """Lines that are neither blank nor comments."""
    return sum(1 for line in path.read_text().splitlines() if line.strip()[:1] not in ("", "#"))


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    return [
        (f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Project modules `path` imports, anywhere in the file (a late import is still an edge)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def test_scripts_are_thin() -> None:
    scripts = sum(code_lines(p) for p in sources("scripts"))
    total = scripts + sum(code_lines(p) for p in sources(*PACKAGES))
    assert scripts <= 0.15 * total, f"scripts/ holds {scripts} of {total} lines"
    long = [(name, n) for p in sources("scripts") for name, n in functions(p) if n > 40]
    assert not long, long


def test_no_function_over_60_lines() -> None:
    long = [(name, n) for p in sources(*PACKAGES) for name, n in functions(p) if n > 60]
    assert not long, long


def test_no_path_hacks() -> None:
    for path in sources(*PACKAGES, "scripts", "tests"):
        text = path.read_text()
        for hack in ("sys.path" + ".insert", "noqa" + ": E402"):
            assert hack not in text, f"{path.relative_to(ROOT)}: {hack}"


def test_no_import_cycle_and_supernet_never_imports_predictor() -> None:
    modules = {module_name(p): p for p in sources(*PACKAGES)}
    graph = {m: {i for i in imports(p) if i in modules and i != m} for m, p in modules.items()}
    upward = sorted(
        (m, i)
        for m, deps in graph.items()
        for i in deps
        if m.startswith("supernet") and i.startswith("predictor")
    )
    assert not upward, f"supernet imports predictor: {upward}"
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join(stack[stack.index(node) :] + [node])
            )
        if node in done:
            return
        for dep in sorted(graph[node]):
            # `import a.b` also runs a/__init__.py: a package importing its own submodules is fine
            if not node.startswith(dep + ".") and not dep.startswith(node + "."):
                visit(dep, [*stack, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
