"""The project uses Optuna and Keras Tuner through their public names only.

Why: private names (``study._storage``, ``trial._trial_id``,
``keras_tuner.src``, Optuna's ``fixed_params`` system attribute) change
without notice between releases. The scan below reads ``tuner/`` and
``objectives/`` with ``ast`` and checks them against the *installed*
Optuna and Keras Tuner: every dotted name taken from either library must
exist there and be public, and no private attribute of their objects may be
read or overridden. A line that must reach in anyway carries a comment
saying ``no public ...`` (why there is no public way); only such lines pass.
"""

from __future__ import annotations

import ast
import importlib
import io
import pathlib
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARIES = ("optuna", "keras_tuner")
PRIVATE_MODULE_PARTS = {"src"}  # keras_tuner.src is Keras Tuner's implementation, not its API
JUSTIFIED = "no public"  # what the comment of a line that reaches in must say
INTERNAL_STRINGS = {"fixed_params"}  # Optuna's own system attributes


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library_private_names() -> set[str]:
    """Private attribute names of the libraries' public objects, as installed."""
    import keras_tuner as kt
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 1)})
    study.tell(trial, 0.0)
    oracle = kt.Oracle(objective=kt.Objective("x", "max"), max_trials=1)
    objects = [study, trial, study.trials[0], oracle, kt.engine.trial.Trial(kt.HyperParameters()),
               kt.HyperParameters(), kt.HyperModel(), optuna.storages.InMemoryStorage()]
    classes = [optuna.Study, optuna.Trial, optuna.trial.FrozenTrial, optuna.storages.BaseStorage,
               optuna.storages.RDBStorage, optuna.storages.JournalStorage, kt.Oracle, kt.Tuner,
               kt.HyperModel, kt.HyperParameters, kt.engine.trial.Trial]
    names = {n for obj in objects for n in vars(obj)} | {n for cls in classes for n in dir(cls)}
    return {n for n in names if _is_private(n)}


def _justified_lines(source: str) -> set[int]:
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and JUSTIFIED in tok.string.lower():
            lines.add(tok.start[0])
    return lines


def _resolve(dotted: str) -> bool:
    """Does ``dotted`` name something in the installed library?"""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return False
        return True
    return False


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _calls_super_within(node: ast.Attribute, spans: set[tuple[int, int]]) -> bool:
    """``super().name`` inside a justified override."""
    call = node.value
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "super"
            and any(a <= node.lineno <= b for a, b in spans))


def violations(source: str, filename: str, private_names: set[str]) -> list[str]:
    """Uses of non-public Optuna / Keras Tuner names in ``source`` (one line each)."""
    tree = ast.parse(source, filename)
    justified = _justified_lines(source)
    found: list[tuple[int, str]] = []
    aliases: dict[str, str] = {}  # local name -> dotted library name
    excused: set[str] = set()  # aliases bound on a justified line: their uses are that reach-in

    def check_dotted(dotted: str, line: int) -> None:
        parts = dotted.split(".")
        if any(_is_private(p) or p in PRIVATE_MODULE_PARTS for p in parts[1:]):
            found.append((line, f"non-public name {dotted}"))
        elif not _resolve(dotted):
            found.append((line, f"{dotted} is not in the installed {parts[0]}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LIBRARIES:
                    check_dotted(a.name, node.lineno)
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or a.name.split(".")[0]
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.split(".")[0] in LIBRARIES):
            for a in node.names:
                check_dotted(f"{node.module}.{a.name}", node.lineno)
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                if node.lineno in justified:
                    excused.add(a.asname or a.name)
    # A justified override of a private method may call the library's version.
    supers = {(n.lineno, n.end_lineno) for n in ast.walk(tree)
              if isinstance(n, ast.FunctionDef) and n.lineno in justified}
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            head = dotted.split(".")[0] if dotted else None
            if head in aliases:  # a name taken from the library: check the longest chain only
                if id(node) not in inner and head not in excused:
                    check_dotted(aliases[head] + dotted[len(head):], node.lineno)
            elif node.attr in private_names and not _calls_super_within(node, supers):
                found.append((node.lineno, f"private library attribute .{node.attr}"))
        elif isinstance(node, ast.FunctionDef) and node.name in private_names:
            found.append((node.lineno, f"override of the library's private {node.name}"))
        elif isinstance(node, ast.Constant) and node.value in INTERNAL_STRINGS:
            found.append((node.lineno, f"Optuna's internal attribute {node.value!r}"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(set(found)) if line not in justified]


@pytest.fixture(scope="module")
def private_names() -> set[str]:
    return _library_private_names()


def _sources():
    for folder in ("tuner", "objectives"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_project_uses_only_public_optuna_and_keras_tuner(private_names):
    found = []
    for path in _sources():
        found += violations(path.read_text(), str(path.relative_to(ROOT)), private_names)
    assert not found, "reach into a library only with a '# no public ...' comment saying why:\n" + \
        "\n".join(found)


def test_the_scan_catches_private_uses(private_names):
    bad = (
        "import optuna\n"
        "from keras_tuner.src.engine import trial as kt_trial\n"
        "import keras_tuner as kt\n"
        "def f(study, t):\n"
        "    study._storage.get_trial_system_attrs(t._trial_id)['fixed_params']\n"
        "    kt.engine.trial.NoSuchName\n"
        "    optuna.trial.TrialState.RUNNING\n"
        "class O(kt.Oracle):\n"
        "    def _save_trial(self, trial):\n"
        "        pass\n"
    )
    found = violations(bad, "bad.py", private_names)
    assert len(found) == 6, found
    assert all(":7:" not in f for f in found)  # a public name passes
    marked = (
        "import keras_tuner as kt\n"
        "from keras_tuner.src import config  # no public switch\n"
        "config.DEBUG = False\n"
        "def f(study):\n"
        "    return study._storage  # no public accessor\n"
        "class O(kt.Oracle):\n"
        "    def _save_trial(self, trial):  # no public hook\n"
        "        super()._save_trial(trial)\n"
    )
    assert violations(marked, "ok.py", private_names) == []
