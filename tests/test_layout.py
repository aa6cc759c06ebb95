"""The package's stages import downwards only, read from the source with `ast`, and no module-level import runs in a circle."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_googlenet"
# Lowest first: a module imports only from its own stage or the ones before it.
# The model stage is two packages: the network, and its pretrained weights,
# which stay at keras_googlenet.weights (public since 0.1); kerashub wraps the
# model in KerasHub's classes. defaults, native_stderr and storage import nothing of ours.
STAGES = (
    ("defaults", "native_stderr", "storage", "_lazy", "_moved"),
    ("model", "weights", "kerashub"),
    ("data",),
    ("artifacts",),
    ("training",),
    ("export",),
    ("inference",),
    ("cli", "__init__"),
)
LEVEL = {name: level for level, names in enumerate(STAGES) for name in names}


def stage(module):
    """The stage level of a dotted module name inside keras_googlenet."""
    parts = module.split(".")
    return LEVEL[parts[1] if len(parts) > 1 else "__init__"]


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source):
    """(imported module, whether at module level) for each import of keras_googlenet in a source."""
    found = []
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from keras_googlenet.training import run` imports keras_googlenet.training.run
            found += [(f"{node.module}.{alias.name}", id(node) in top_level) for alias in node.names]
    return [(name, top) for name, top in found if name.split(".")[0] == "keras_googlenet"]


def known(name, modules):
    """The longest prefix of an imported name that is one of our modules (a name may be a function)."""
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def upward_imports(sources):
    """Each import that runs from a stage to a later one, as 'importer -> imported'."""
    return [
        f"{importer} -> {known(name, sources)}"
        for importer, source in sources.items()
        for name, _ in imports(source)
        if known(name, sources) != "keras_googlenet" and stage(known(name, sources)) > stage(importer)
    ]


def import_cycle(sources):
    """A circle of module-level imports between our modules, or None."""
    edges = {
        importer: {known(name, sources) for name, top in imports(source) if top} - {"keras_googlenet", importer}
        for importer, source in sources.items()
    }
    done, path = set(), []

    def visit(module):
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(edges.get(module, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    return next((cycle for cycle in map(visit, sorted(edges)) if cycle), None)


@pytest.fixture(scope="module")
def sources():
    return {module_name(path): path.read_text() for path in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_stage(sources):
    assert sorted({name.split(".")[1] for name in sources if "." in name} - set(LEVEL)) == []


def test_no_import_runs_back_up_a_stage(sources):
    assert upward_imports(sources) == []


def test_no_module_level_imports_run_in_a_circle(sources):
    assert import_cycle(sources) is None


def test_the_checks_find_an_upward_import_and_a_circle(sources):
    planted = {
        **sources,
        "keras_googlenet.data.planted": "from keras_googlenet.training import run\n",
        # googlenet imports layers at module level
        "keras_googlenet.model.layers": sources["keras_googlenet.model.layers"] + "\nfrom keras_googlenet.model import googlenet\n",
    }
    assert upward_imports(planted) == ["keras_googlenet.data.planted -> keras_googlenet.training.run"]
    assert set(import_cycle(planted)) == {"keras_googlenet.model.layers", "keras_googlenet.model.googlenet"}
