"""The package keeps its architecture: every module's imports, read with `ast`, go down the layers, never up and
never round in a circle, and the model (crossmodal/nn/) imports no task, data set or training code.

LAYERS lists them bottom up: a module may import from its own package and from any layer below.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "crossmodal"

LAYERS = [
    ("crossmodal.checks", "crossmodal.devices", "crossmodal.folders", "crossmodal.images"),  # the base
    ("crossmodal.nn",),  # the model
    ("crossmodal.data", "crossmodal.pretrained", "crossmodal.viz", "crossmodal.drawings"),  # data sets; the shipped
    # models; pictures of the maps; whether a picture is a drawing
    ("crossmodal.training",),  # the one trainer
    ("crossmodal.tasks",),  # what the trainer trains
    ("crossmodal.widgets",),  # for notebooks
    ("crossmodal.cli",),  # what the command lines share
    ("crossmodal.train", "crossmodal.caption"),  # the command lines
    ("crossmodal",),  # the package's face: imports what learners use most
]


def modules(root=ROOT):
    """{dotted module name: path} of every module of the package."""
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name, path, known):
    """The package's modules that module `name` imports, anywhere in it (inside functions too: a lazy import is
    still an import)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # crossmodal.nn.model.Generation -> crossmodal.nn.model
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own face: not an edge
                found.add(target)
                break
    return found


def layer_of(name):
    """(layer index, the layer's package name) of a module: the longest entry of LAYERS it lies in."""
    best = None
    for i, layer in enumerate(LAYERS):
        for top in layer:
            inside = name == top or (name.startswith(top + ".") and top != "crossmodal")  # the face is one module
            if inside and (best is None or len(top) > len(best[1])):
                best = (i, top)
    return best


def problems(known):
    """Every import that runs up a layer or across to another package of the same layer, and every circle."""
    graph = {name: imports(name, path, known) for name, path in known.items()}
    wrong = []
    for name, targets in sorted(graph.items()):
        here = layer_of(name)
        if here is None:
            wrong.append(f"{name} is in no layer of LAYERS: add it where it belongs")
            continue
        for target in sorted(targets):
            there = layer_of(target)
            if there[0] > here[0] or (there[0] == here[0] and there[1] != here[1]):
                wrong.append(f"{name} imports {target}, which lies {'above it' if there[0] > here[0] else 'beside it'}")
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                wrong.append("circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return wrong


def test_every_import_goes_down_the_layers_and_none_runs_in_a_circle():
    assert problems(modules()) == []


def test_the_model_imports_no_task_data_set_or_training_code():
    known = modules()
    for name, path in known.items():
        if name.startswith("crossmodal.nn"):
            assert all(t.startswith(("crossmodal.nn", "crossmodal.images", "crossmodal.folders"))
                       for t in imports(name, path, known)), name


def test_no_module_uses_another_modules_private_names():
    known = modules()
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert not [a.name for a in node.names if a.name.startswith("_")], f"{name} imports a private name"


def test_exactly_one_optimisation_loop_in_the_library():
    """Only the trainer steps an optimizer."""
    stepping = [name for name, path in modules().items() if ".step()" in path.read_text()
                and "optimizer" in path.read_text()]
    assert stepping == ["crossmodal.training.trainer"]


@pytest.mark.parametrize("case", ["up", "beside", "circle", "nowhere"])
def test_the_check_catches_a_broken_layout(tmp_path, case):
    """Each rule fails on a package broken on purpose, so the test above cannot pass vacuously."""
    package = tmp_path / "crossmodal"
    (package / "nn").mkdir(parents=True)
    (package / "data").mkdir()
    for folder in (package, package / "nn", package / "data"):
        (folder / "__init__.py").write_text("")
    lines = {"up": ("nn/model.py", "from ..data import mnist\n"), "beside": ("data/x.py", "from .. import viz\n"),
             "circle": ("nn/model.py", "from . import layers\n"), "nowhere": ("stray.py", "")}
    (package / "data" / "mnist.py").write_text("")
    (package / "viz.py").write_text("")
    (package / "nn" / "layers.py").write_text("from . import model\n" if case == "circle" else "")
    path, text = lines[case]
    (package / path).write_text(text)
    assert problems(modules(package))
