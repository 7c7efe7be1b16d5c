"""udl.regularization: the registry of implemented regularizers behind figure 9.14."""

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import udl
from udl.nn.fixed_joints import FixedJointNetwork
from udl.regularization import MECHANISMS, REGULARIZERS, Regularizer, by_mechanism, load_target, survey

ROOT = Path(__file__).resolve().parents[1]  # the checkout: entries name their test files relative to it


def _names(node: ast.AST) -> set[str]:
    """Every name and attribute a piece of code mentions."""
    return {sub.id if isinstance(sub, ast.Name) else sub.attr
            for sub in ast.walk(node) if isinstance(sub, (ast.Name, ast.Attribute))}


def _tests_using(entry: Regularizer, root: Path = ROOT) -> list[str]:
    """The test functions of ``entry.test`` that use its target; [] if the file is missing.

    A test counts when the file imports the target's module (``from module import first``
    or ``import module``) and the test function mentions the target's first name (the
    class or function) and, for a dotted target (``Class.method``), its last name too.
    """
    path = root / entry.test
    if not path.is_file():
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    first, last = entry.attr.split(".")[0], entry.attr.split(".")[-1]
    imported = any(
        (isinstance(node, ast.ImportFrom) and node.module == entry.module and any(a.name == first for a in node.names))
        or (isinstance(node, ast.Import) and any(a.name == entry.module for a in node.names))
        for node in ast.walk(tree))
    return [node.name for node in ast.walk(tree) if imported and isinstance(node, ast.FunctionDef)
            and node.name.startswith("test") and {first, last} <= _names(node)]


def test_every_entry_imports_and_is_tested_in_its_test_file():
    rows = survey()
    assert len(rows) == len(REGULARIZERS) > 0
    for row, entry in zip(rows, REGULARIZERS):
        assert row["imports"] and row["error"] == "", row
        assert (ROOT / entry.test).is_file(), row
        assert _tests_using(entry), f"{row['test']} has no test using {row['target']}"


def test_groups_follow_the_books_four_mechanisms():
    groups = by_mechanism()
    assert tuple(groups) == MECHANISMS == ("smoother function", "more data", "model combination", "wide minima")
    names = {m: [r.name for r in rs] for m, rs in groups.items()}
    assert "dropout" in names["smoother function"] and "dropout" in names["model combination"]
    assert "bagging ensemble" in names["model combination"] and "L2 penalty" in names["smoother function"]
    assert sum(len(v) for v in groups.values()) == sum(len(r.mechanisms) for r in REGULARIZERS)


def test_load_target_follows_dotted_attributes():
    assert load_target("udl.nn.fixed_joints:FixedJointNetwork.fit_least_squares") is \
        FixedJointNetwork.fit_least_squares
    with pytest.raises(AttributeError):
        load_target("udl.nn.dropout:NoSuchThing")


def test_a_test_counts_only_if_it_imports_and_uses_the_target(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "from udl.nn.dropout import Dropout\n\n"
        "def test_uses():\n    assert Dropout(0.5).p == 0.5\n\n"
        "def test_other():\n    assert 1 + 1 == 2\n\n"
        "def helper():\n    return Dropout(0.1)\n")
    (tmp_path / "tests" / "test_b.py").write_text("def test_mentions_only():\n    Dropout = 3\n    assert Dropout\n")
    entry = Regularizer("dropout", ("model combination",), "udl.nn.dropout:Dropout", "tests/test_a.py")
    assert _tests_using(entry, tmp_path) == ["test_uses"]
    unimported = Regularizer("dropout", ("model combination",), "udl.nn.dropout:Dropout", "tests/test_b.py")
    assert _tests_using(unimported, tmp_path) == []
    missing = Regularizer("dropout", ("model combination",), "udl.nn.dropout:Dropout", "tests/test_c.py")
    assert _tests_using(missing, tmp_path) == []


def test_a_broken_entry_is_reported_not_raised():
    broken = Regularizer("ghost", ("more data",), "udl.nn.no_such_module:Augment", "tests/test_ghost.py")
    (row,) = survey((broken,))
    assert not row["imports"]
    assert row["error"] == "ModuleNotFoundError: No module named 'udl.nn.no_such_module'"


def test_the_registry_works_the_same_without_the_repository(tmp_path):
    # A copy of the package with no tests/ beside it, as in an installed wheel, gives the same
    # rows as the checkout; an audit hook records every file survey() and by_mechanism() open.
    package = tmp_path / "site" / "udl"
    shutil.copytree(Path(udl.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    script = textwrap.dedent("""
        import json, os, sys
        import udl.regularization as reg
        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
        rows = reg.survey()
        groups = {m: [r.name for r in v] for m, v in reg.by_mechanism().items()}
        print(json.dumps({"package": os.path.dirname(reg.__file__), "rows": rows, "groups": groups,
                          "opened": opened}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(package.parent), "PATH": "", "OMP_NUM_THREADS": "1"}, timeout=120)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.splitlines()[-1])
    assert Path(record["package"]) == package  # the copy, not the checkout, was imported
    assert record["rows"] == survey() and all(row["imports"] for row in record["rows"])
    assert record["groups"] == {m: [r.name for r in v] for m, v in by_mechanism().items()}
    installed = (sys.prefix, sys.base_prefix)  # Python and its packages (CI's venv lies inside the checkout)
    leaks = [f for f in record["opened"] if not f.startswith(installed) and (
        f.startswith(str(ROOT)) or (f.startswith(str(tmp_path)) and not f.startswith(str(package))))]
    assert leaks == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(mechanisms=("sharper",)), "'mechanisms'"), (dict(mechanisms="smoother function"), "'mechanisms'"),
    (dict(mechanisms=()), "'mechanisms'"), (dict(target="udl.nn.dropout.Dropout"), "'target'"),
    (dict(target="udl.nn.dropout:"), "'target'"), (dict(test="tests/test_dropout.txt"), "'test'"),
    (dict(test="/abs/tests/test.py"), "'test'"), (dict(name=""), "'name'"),
])
def test_bad_entries_are_refused(kwargs, message):
    good = dict(name="dropout", mechanisms=("model combination",), target="udl.nn.dropout:Dropout",
                test="tests/nn/test_dropout.py")
    with pytest.raises((ValueError, TypeError), match=message):
        Regularizer(**{**good, **kwargs})
