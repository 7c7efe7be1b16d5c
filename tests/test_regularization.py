"""udl.regularization: the registry of implemented regularizers behind figure 9.14."""

import pytest

from udl import regularization as reg
from udl.nn.fixed_joints import FixedJointNetwork
from udl.regularization import MECHANISMS, REGULARIZERS, Regularizer, by_mechanism, load_target, survey, \
    referencing_tests


def test_every_entry_imports_and_is_tested_in_its_test_file():
    rows = survey()
    assert len(rows) == len(REGULARIZERS) > 0
    for row in rows:
        assert row["imports"], row
        assert row["test_exists"], row
        assert row["tests"], f"{row['test']} has no test using {row['target']}"


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
    assert referencing_tests(entry, tmp_path) == ["test_uses"]
    unimported = Regularizer("dropout", ("model combination",), "udl.nn.dropout:Dropout", "tests/test_b.py")
    assert referencing_tests(unimported, tmp_path) == []
    missing = Regularizer("dropout", ("model combination",), "udl.nn.dropout:Dropout", "tests/test_c.py")
    assert referencing_tests(missing, tmp_path) == []


def test_a_broken_entry_is_reported_not_raised(tmp_path):
    broken = Regularizer("ghost", ("more data",), "udl.nn.no_such_module:Augment", "tests/test_ghost.py")
    (row,) = survey((broken,), root=tmp_path)
    assert not row["imports"] and "ModuleNotFoundError" in row["error"]
    assert not row["test_exists"] and row["tests"] == []


def test_project_root_holds_the_tests():
    root = reg.project_root()
    assert root is not None and (root / "tests" / "test_regularization.py").is_file()


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
