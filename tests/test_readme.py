"""README's Python examples run as written and give the numbers their comments state."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def _run(code: str) -> dict:
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README is ours
    return namespace


def test_the_readme_has_its_examples():
    assert len(_blocks()) == 4


def test_figures_from_python():
    ns = _run(_blocks()[0])
    assert ns["r"].ok and ns["r"].id == "3.5"
    assert "\n" not in repr(ns["r"])  # a prompt shows one line


def test_fit_example_learns_what_its_comment_says():
    code = _blocks()[1]
    stated = re.search(r"# \(([\d.]+), ([\d.]+)\): the mean loss", code)
    ns = _run(code)
    losses = ns["losses"]
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert first == pytest.approx(float(stated[1]), abs=0.01)
    assert last == pytest.approx(float(stated[2]), abs=0.002)
    assert [tuple(w.shape) for w in ns["net"].omegas] == [(4, 3), (2, 4), (3, 2), (2, 3)]


def test_language_model_example():
    code = _blocks()[2]
    assert "174,604,259,328" in code
    ns = _run(code)
    assert ns["parameter_count"](ns["GPTConfig"].gpt3()) == 174_604_259_328
    assert ns["losses"][-1] < ns["losses"][0] - 0.5
    assert isinstance(ns["text"], str) and ns["text"]


def test_graph_example():
    code = _blocks()[3]
    stated = re.search(r"# ([\d.]+): (\d+) of the (\d+) unlabelled members", code)
    ns = _run(code)
    assert ns["accuracy"] == pytest.approx(float(stated[1]), abs=5e-4)
    assert round(ns["accuracy"] * int(stated[3])) == int(stated[2])
