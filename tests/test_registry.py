"""The figure registry: ids, presets, typed parameters, checks."""

import math

import numpy as np
import pytest
import torch
from fakes import fake_figures

from udl.registry import Check, Params, chapter_of, figure, get, parse_value, sort_key, to_jsonable


def test_sort_key_orders_like_the_book():
    ids = ["C.1", "10.2", "3.regions", "3.12", "3.5", "1.1", "10.mnist1d", "3.1"]
    assert sorted(ids, key=sort_key) == ["1.1", "3.1", "3.5", "3.12", "3.regions", "10.2", "10.mnist1d", "C.1"]
    assert chapter_of("10.6") == 10 and chapter_of("C.2") == "C"


@pytest.mark.parametrize("text, default, expected", [
    ("3", 1, 3), ("0.5", 1.0, 0.5), ("2", 1.0, 2.0), ("true", False, True), ("0", True, False),
    ("abc", "x", "abc"), ("1,2,3", [4], [1, 2, 3]), ("0.1, 0.2", [1.0], [0.1, 0.2])])
def test_parse_value_types(text, default, expected):
    value = parse_value("k", text, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, default, wanted", [
    ("0.5", 1, "an int"), ("x", 1.0, "a float"), ("maybe", True, "a bool"), ("inf", 1.0, "a float"),
    ("1,x", [1], "list of int")])
def test_parse_value_errors_name_the_type(text, default, wanted):
    with pytest.raises(ValueError, match=wanted):
        parse_value("k", text, default)


def test_resolve_overrides_and_errors():
    with fake_figures():
        spec = get("99.square")
        assert spec.resolve("tiny", {"n": "7", "scale": 2})["n"] == 7
        assert spec.resolve("tiny", {"scale": 2})["scale"] == 2.0
        with pytest.raises(ValueError, match="its parameters: flag, n, name, scale, sizes"):
            spec.resolve("tiny", {"m": "1"})
        with pytest.raises(TypeError, match="must be int"):
            spec.resolve("tiny", {"n": 2.5})
        with pytest.raises(ValueError, match=r"^The 'preset' parameter of FigureSpec\.resolve must be one of 'tiny', "
                                             r"'full'\. Got 'huge' instead\.$"):
            spec.resolve("huge")


def test_unknown_id_names_the_closest():
    with fake_figures():
        with pytest.raises(KeyError, match="did you mean 99.square"):
            get("99.squares")


def test_figure_declaration_is_validated():
    with pytest.raises(ValueError, match="presets"):
        figure("98.x", title="t", caption="c", params={"tiny": {}})
    with pytest.raises(ValueError, match="different parameters"):
        figure("98.x", title="t", caption="c", params={"tiny": {"a": 1}, "full": {"b": 1}})
    with pytest.raises(TypeError, match="one type"):
        figure("98.x", title="t", caption="c", params={"tiny": {"a": 1}, "full": {"a": 1.0}})
    with pytest.raises(ValueError, match="fig_id"):
        figure("figure one", title="t", caption="c", params={"tiny": {}, "full": {}})


def test_params_are_read_only():
    p = Params({"a": 1})
    assert p.a == 1
    with pytest.raises(AttributeError):
        p.a = 2
    with pytest.raises(AttributeError, match="parameters: a"):
        p.b


def test_checks_measure():
    assert Check.close("c", 1.05, 1.0, 0.1).ok and not Check.close("c", 1.2, 1.0, 0.1).ok
    assert Check.close("c", 103, 100, 0.05, rel=True).ok and not Check.close("c", 106, 100, 0.05, rel=True).ok
    assert not Check.close("c", math.nan, 0.0, 1.0).ok
    assert Check.equal("c", np.array([1, 2]), [1, 2]).ok and not Check.equal("c", 3, 4).ok
    assert Check.less("c", 1, 2).ok and not Check.less("c", 2, 2).ok
    assert Check.greater("c", 3, 2).ok and not Check.greater("c", 2, 2).ok


def test_to_jsonable():
    value = {"a": np.float32(1.5), "b": torch.tensor([1, 2]), "c": np.bool_(True), "d": float("nan"),
             "e": (np.int64(3),)}
    assert to_jsonable(value) == {"a": 1.5, "b": [1, 2], "c": True, "d": "nan", "e": [3]}
