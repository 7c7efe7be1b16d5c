"""The figure registry: ids, presets, typed parameters, checks."""

import math

import numpy as np
import pytest
import torch
from fakes import fake_figures

from udl.registry import Check, Params, Result, chapter_of, figure, get, parse_value, sort_key, to_jsonable


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


# --------------------------------------------------------------------------- limits
@pytest.mark.parametrize("key, value, message", [
    ("n", "-5", r"^The 'n' parameter of figure 99\.square must be an int in \[1, 1000\]\. Got -5 instead\.$"),
    ("n", 10**9, r"an int in \[1, 1000\]\. Got 1000000000 instead"),
    ("scale", float("nan"), r"a float in \[0, 10\]\. Got nan instead"),
    ("scale", float("inf"), r"a float in \[0, 10\]"),
    ("sizes", "", r"must be a list of 1 to 4 ints in \[1, 8\]\. Got \(empty\) instead"),
    ("sizes", [], r"a list of 1 to 4 ints"),
    ("sizes", "1,2,3,4,5", r"a list of 1 to 4 ints in \[1, 8\]\. Got 1,2,3,4,5 instead"),
    ("sizes", [0], r"ints in \[1, 8\]\. Got 0 instead"),
    ("name", "c", r"must be one of 'a', 'b'\. Got 'c' instead"),
])
def test_values_outside_their_limits_are_refused_before_computing(key, value, message):
    from fakes import CALLS
    with fake_figures():
        spec = get("99.square")
        before = CALLS["count"]
        with pytest.raises(ValueError, match=message):
            spec.resolve("tiny", {key: value})
        import udl
        with pytest.raises(ValueError, match=message):
            udl.figure("99.square", "tiny", cache=False, **{key: value})
        assert CALLS["count"] == before  # nothing was computed


def test_values_within_limits_and_typed_list_elements():
    with fake_figures():
        spec = get("99.square")
        assert spec.resolve("tiny", {"sizes": [np.int64(8), 1], "scale": np.float32(0.0)})["sizes"] == [8, 1]
        with pytest.raises(ValueError, match="expected an int, got 'a'"):
            spec.resolve("tiny", {"sizes": ["a"]})
        with pytest.raises(TypeError, match="list of int"):
            spec.resolve("tiny", {"sizes": [1.5]})


def test_a_float_without_a_limit_must_still_be_finite():
    spec = figure("98.free", title="t", caption="c", params={"tiny": {"x": 1.0}, "full": {"x": 1.0}})(
        lambda p, run: Result())
    try:
        assert spec.resolve("tiny", {"x": -1e300})["x"] == -1e300
        with pytest.raises(ValueError, match="must be a finite float. Got nan"):
            spec.resolve("tiny", {"x": float("nan")})
    finally:
        from udl.registry import REGISTRY
        REGISTRY.pop("98.free", None)


def test_limit_declarations_are_validated():
    with pytest.raises(ValueError, match="limits name unknown parameters: m"):
        figure("98.x", title="t", caption="c", params={"tiny": {"n": 1}, "full": {"n": 1}}, limits={"m": (0, 1)})
    with pytest.raises(ValueError, match=r"The 'n' parameter of figure 98\.x must be an int in \[2, 3\]\. Got 1"):
        figure("98.x", title="t", caption="c", params={"tiny": {"n": 1}, "full": {"n": 2}}, limits={"n": (2, 3)})(
            lambda p, run: Result())
    with pytest.raises(TypeError, match="a Limit or a"):
        figure("98.x", title="t", caption="c", params={"tiny": {"n": 1}, "full": {"n": 1}}, limits={"n": (1, 2, 3)})
    from udl.registry import REGISTRY
    REGISTRY.pop("98.x", None)


# --------------------------------------------------------------------------- untested checks
def test_an_untested_check_is_never_a_pass():
    untested = Check.untested("the peak sits at P = N", "needs widths on both sides of P = N")
    assert untested.status == "not tested" and not untested.ok and not untested.tested
    assert untested.to_dict() == {"claim": "the peak sits at P = N", "measured": "not tested",
                                  "expected": "needs widths on both sides of P = N", "ok": None, "tested": False}
    passed = Check.less("error is small", 0.1, 1.0)
    assert passed.status == "passed" and "tested" not in passed.to_dict()
    assert Check.greater("x", 0, 1).status == "failed"
    assert Result(checks=[passed, untested]).ok  # an untested claim does not fail the figure...
    assert not Result(checks=[untested]).ok  # ...but a figure must test something
    assert not Result(checks=[Check.greater("x", 0, 1), untested]).ok


def test_requires_relates_parameters_before_computing():
    spec = figure("98.rel", title="t", caption="c", params={"tiny": {"a": 1, "b": 2}, "full": {"a": 1, "b": 2}},
                  limits={"a": (0, 9), "b": (0, 9)})(lambda p, run: Result())

    @spec.requires
    def _(p):
        if p.a >= p.b:
            raise ValueError(f"The 'a' parameter of figure 98.rel must be less than b ({p.b}). Got {p.a} instead.")

    try:
        assert spec.resolve("tiny", {"a": "1"}) == {"a": 1, "b": 2}
        with pytest.raises(ValueError, match=r"must be less than b \(2\)\. Got 3 instead"):
            spec.resolve("tiny", {"a": "3"})
    finally:
        from udl.registry import REGISTRY
        REGISTRY.pop("98.rel", None)


def test_every_preset_meets_its_figures_requirements():
    from udl.registry import PRESETS, load_all
    for spec in load_all().values():
        for preset in PRESETS:
            spec.resolve(preset)


def test_a_result_prints_in_one_short_line():
    import udl
    with fake_figures():
        result = udl.figure("99.square", "tiny", cache=False)
    text = repr(result)
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith("Result('99.square', preset='tiny', seed=0: 1/1 checks passed, ")
    assert text.endswith("metrics: n, mean_square, first)")
    many = Result(metrics={f"m{i}": i for i in range(9)}, checks=[Check.untested("c", "why")])
    assert repr(many) == "Result(not run: 0/0 checks passed, 1 not tested, 0.00 s; metrics: m0, m1, m2, m3, m4, m5, " \
                         "... (9 in all))"


def test_a_number_limited_to_choices():
    from udl.registry import Limit
    with pytest.raises(ValueError, match=r"^The 'stride' parameter of figure X must be one of 1, 2, 4\. Got 3 instead\.$"):
        Limit(choices=(1, 2, 4)).check("figure X", "stride", 3, 1)
    with pytest.raises(ValueError, match=r"must be a non-empty list of values each one of 1, 2, 4\. Got 1,3 instead"):
        Limit(choices=(1, 2, 4)).check("figure X", "strides", [1, 3], [1])
    Limit(choices=(1, 2, 4)).check("figure X", "stride", 4, 1)
