"""The shape of the package: no import cycles, no method name known outside cluster/.

The layers themselves are import-linter contracts in pyproject.toml (`lint-imports`,
run by `make test`); grimp, which import-linter installs, gives the import graph here.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp

import segwise

SRC = Path(segwise.__file__).parent


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b"]]


def test_the_import_graph_of_segwise_has_no_cycles():
    graph = grimp.build_graph("segwise", include_external_packages=False)
    assert _cycles(graph) == []


# A method's name compared as a string: `== "kmeans"`, `in ("hierarchical", ...)`, `case "dbscan"`.
_METHOD_TEST = re.compile(
    r"""(==|!=|\bin\b|\bcase\b)\s*[\(\[{]?\s*["'](kmeans|hierarchical|dbscan|hdbscan|gmm|som|kprototypes|two_stage|"""
    r"""multiview|autoencoder|bisecting_kmeans)["']"""
)


def test_no_module_outside_cluster_branches_on_a_method_name():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "cluster":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _METHOD_TEST.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []
