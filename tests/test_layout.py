"""The layout the README's Layout section describes: imports follow the data flow (nothing
imports upward, no cycles, the parts of one layer import none of each other), and no module
or function grows past a size a reader takes in at once without a reason written beside it."""

import ast
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src"
# Lowest first; a module imports from its own layer or a lower one, never from a higher one.
LAYERS = [
    {"src.errors"},
    {"src.stopping", "src.run_lock"},  # how a command stops; the run dir's one writer
    {"src.config"},
    {"src.models"},  # the model sources: data and optim ask them
    {"src.adapters"},  # peft's adapters on a source's model: the runner, export and checks ask
    {"src.data", "src.pretrained", "src.optim", "src.tracking"},
    {"src.training"},
    {"src.migration"},  # a saved config read as today's: resume and trained_run ask it
    {"src.checks", "src.resume"},
    {"src.sweep_jobs"},  # a sweep's jobs, each through the check pass before the first starts
    # A run's orchestration, and a trained run read back: both build from the public steps.
    {"src.runner", "src.trained_run"},
    {"src.soups"},  # models made from trained runs, without training: soups and WiSE-FT
    {"src.run", "src.evaluate", "src.predict", "src.cache", "src.soup"},
]
# The commands that run a training run; every other module builds from the steps themselves.
ENTRY_POINTS = {"src.run"}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# What a longer function carries on the line above its `def`: why it stays one function.
LONG_REASON = "# Long:"
# What every error shown to the user starts with.
ERROR = "groupwise: error:"


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in SRC.rglob("*.py")}


def part(module: str) -> str:
    """The unit a layer lists: the subpackage (`src.optim`) or the top-level module."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if part(module) in parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The src modules `path` imports, anywhere in it (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("src")}
    return found - {"src"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, set(known)) for name, path in known.items()}


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in modules() if m != "src.__init__" and part(m) not in set().union(*LAYERS)]
    assert not unplaced, f"add them to LAYERS and the README's Layout: {unplaced}"


def test_nothing_imports_upward_or_across_a_layer():
    wrong = []
    for module, targets in graph().items():
        if module == "src.__init__":
            continue
        for target in targets:
            upward = layer(target) > layer(module)
            across = layer(target) == layer(module) and part(target) != part(module)
            if upward or across:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_nothing_but_the_entry_points_imports_the_runner():
    importers = {module for module, targets in graph().items() if "src.runner" in targets}
    assert importers <= ENTRY_POINTS, importers - ENTRY_POINTS


def test_no_import_cycles():
    edges = graph()
    done, path = set(), []

    def visit(module: str) -> None:
        assert module not in path, f"cycle: {' -> '.join([*path[path.index(module) :], module])}"
        if module in done:
            return
        path.append(module)
        for target in edges.get(module, ()):
            visit(target)
        path.pop()
        done.add(module)

    for module in edges:
        visit(module)


def comment_above(source: list[str], line: int) -> str:
    """The comment lines right above `line` (1-based), joined."""
    above = []
    while line - 2 >= 0 and source[line - 2].strip().startswith("#"):
        above.insert(0, source[line - 2].strip())
        line -= 1
    return " ".join(above)


def test_modules_and_functions_stay_readable_in_one_sitting():
    too_long = []
    for module, path in modules().items():
        source = path.read_text().splitlines()
        if len(source) > MAX_MODULE_LINES:
            too_long.append(f"{module}: {len(source)} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = LONG_REASON in comment_above(source, first)
            if length > MAX_FUNCTION_LINES and not reason:
                too_long.append(f"{module}.{node.name}: {length} lines, no '{LONG_REASON}' above")
    assert not too_long, too_long


def test_hydras_global_state_is_read_at_the_entry_only():
    """Steps take their slice of the config and what the entry read of the launch (Launch):
    only the entry point asks Hydra's global HydraConfig."""
    readers = [m for m, path in modules().items() if "HydraConfig" in path.read_text()]
    assert readers == ["src.run"], readers


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and its functions."""
    owners = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef))]
    return {
        id(owner.body[0].value)
        for owner in owners
        if owner.body
        and isinstance(owner.body[0], ast.Expr)
        and isinstance(owner.body[0].value, ast.Constant)
    }


def code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (f-strings' literal parts included), not its
    docstrings or comments."""
    tree = ast.parse(path.read_text())
    skipped = docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def test_one_module_prints_the_users_errors():
    printing = [m for m, path in modules().items() if any(ERROR in s for s in code_strings(path))]
    assert printing == ["src.errors"], (
        f"{ERROR!r} is written by {printing}; report through src/errors.py (exit_with, "
        "exit_if_user_mistake, report, warn), so every error reads the same and exits alike"
    )


def test_only_hydra_internals_imports_hydras_private_code():
    importing = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            if any(n == "hydra._internal" or n.startswith("hydra._internal.") for n in names):
                importing.append(module)
    assert set(importing) <= {"src.config.hydra_internals"}, (
        f"{sorted(set(importing))} import hydra._internal; keep Hydra's private code in "
        "src/config/hydra_internals.py, guarded by tests/test_hydra_internals.py"
    )
