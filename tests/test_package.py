"""Tests of the package surface: the compiled core, about(), cite(), __all__."""

import qpump
from qpump import _core


def test_core_is_compiled_and_reports_its_build():
    assert _core.build_profile() in ("release", "debug")
    assert _core.core_version() == qpump.__version__


def test_about_prints_versions(capsys):
    info = qpump.about()
    out = capsys.readouterr().out
    for key in ("qpump", "rust core", "numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-ibm-runtime",
                "qiskit-experiments"):
        assert key in info and key in out
    assert "build" in info["rust core"]


def test_cite_is_bibtex_of_the_paper():
    bib = qpump.cite()
    assert bib.startswith("@article{") and "Holdsworth" in bib and "062604" in bib


def test_public_names_exist():
    for name in qpump.__all__:
        assert hasattr(qpump, name)


def _module_imports() -> dict[str, set[str]]:
    """Every qpump module and the qpump modules it imports, at the top or inside functions."""
    import ast
    from pathlib import Path

    root = Path(qpump.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        package = parts if is_package else parts[:-1]
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    imports.add(sub if (root.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                                else target)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qpump"):
                imports.add(node.module)
        graph[name] = {i for i in imports if i != name}
    return graph


def test_no_module_imports_itself_through_others():
    """No import circle among qpump's modules (packages importing their own submodules aside)."""
    graph = _module_imports()
    cycles = []

    def visit(node, path, on_path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                cycle = path[path.index(nxt):] + [nxt]
                if not any(m == c.rsplit(".", 1)[0] for m, c in zip(cycle, cycle[1:], strict=False)):
                    cycles.append(" -> ".join(cycle))
            elif nxt not in done:
                visit(nxt, path + [nxt], on_path | {nxt})
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start})
    assert graph["qpump.states"] and "qpump.cli" not in graph["qpump.sweep"]
    assert not cycles, "\n".join(cycles)
