"""The architecture stays as the README draws it: imports point down, from the interfaces (CLI, Python API,
subcommands) through the engine to the leaves and the core; no circles; no module takes another's private names;
the names of a run dir's files are spelt only by their owner, synthkit/results/rundir.py."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "synthkit"
# Lowest first. A module may import its own package, and any package of a lower layer.
LAYERS = [
    ("synthkit.core", "synthkit.conf"),  # conf holds the packaged YAML configs, no code
    ("synthkit.calls", "synthkit.corpus"),
    ("synthkit.spec",),
    ("synthkit.quality",),
    ("synthkit.results",),
    ("synthkit.engine",),
    ("synthkit.interface",),
    ("synthkit", "synthkit.__main__", "synthkit.errors"),  # the public names: `import synthkit`, `python -m synthkit`
]
RUN_DIR_OWNER = "synthkit.results.rundir"


def _modules() -> dict:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return modules


MODULES = _modules()


def _package(module: str) -> str:
    """The package a module belongs to, as LAYERS names packages (the most specific prefix)."""
    names = [p for layer in LAYERS for p in layer]
    return max((p for p in names if module == p or module.startswith(p + ".")), key=len)


def test_every_module_is_in_a_layer():
    top = [m for m in MODULES if _package(m) == "synthkit" and m != "synthkit"]
    assert not top, f"modules at the top of the package with no layer of their own: {top}"


def _layer(module: str) -> int:
    package = _package(module)
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _imports(tree: ast.Module, module: str) -> list:
    """(imported module, the names taken from it, line) for every import of synthkit, functions' own included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("synthkit")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("synthkit"):
            names = [a.name for a in node.names]
            # `from synthkit.x import y` where y is a module of synthkit.x imports that module.
            submodules = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in submodules]
            found.append((node.module, [n for n in names if f"{node.module}.{n}" not in MODULES], node.lineno))
    return found


def test_imports_point_down():
    upward = []
    for module, tree in MODULES.items():
        for target, _, line in _imports(tree, module):
            same_package = _package(target) == _package(module)
            if not same_package and _layer(target) >= _layer(module) and target in MODULES:
                upward.append(f"{module}:{line} imports {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_no_import_circles():
    graph = {m: {t for t, _, _ in _imports(tree, m) if t in MODULES and t != m} for m, tree in MODULES.items()}
    # Tarjan's strongly connected components: a component of more than one module is a circle.
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_no_module_takes_another_modules_private_names():
    taken = [
        f"{module}:{line} takes {name} from {target}"
        for module, tree in MODULES.items()
        for target, names, line in _imports(tree, module)
        for name in names
        if name.startswith("_") and target != module
    ]
    assert not taken, "\n".join(taken)


def _run_dir_names() -> set:
    tree = MODULES[RUN_DIR_OWNER]
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            # Files only: folder names (brainstorm, exports, plots) are words of the language too.
            if any(isinstance(t, ast.Name) and t.id.endswith("_FILE") for t in node.targets):
                names.add(node.value.value.split("/")[-1])
    return names


def test_the_run_dir_names_its_files_alone():
    names = _run_dir_names()
    assert {"data.jsonl", "rejects.jsonl", "synthkit-status.json", "scores.jsonl", "README.md"} <= names
    spelt = []
    for module, tree in MODULES.items():
        if module == RUN_DIR_OWNER:
            continue
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                spelt += [f"{module}:{node.lineno} spells {name!r}" for name in names if name in node.value]
    assert not spelt, "file names of a run dir outside synthkit/results/rundir.py:\n" + "\n".join(spelt)
