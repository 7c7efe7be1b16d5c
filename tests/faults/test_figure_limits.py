"""Issue 12, item 8, for every figure: each int, float and list parameter declares its range
(a :class:`udl.registry.Limit`), and a value outside it is refused by ``resolve`` in udl's
one-line template before anything is computed. The values are generated from the limits, so
a new figure is covered the day it is registered; the per-chapter modules beside this one
hold the hand-written cases (values that do not fit together, sweeps in another order,
claims a run cannot test).
"""

import math
import re

import pytest

from udl.registry import Limit, load_all

SPECS = load_all()


def outside(limit: Limit, default) -> list:
    """Values that ``limit`` refuses, for a parameter whose preset value is ``default``."""
    if isinstance(default, str):
        return ["not one of them"] if limit.choices else []
    if isinstance(default, list):
        bad = [[]] if limit.min_len >= 1 else []
        if limit.min_len > 1:
            bad.append(default[:limit.min_len - 1])
        if limit.max_len is not None:
            bad.append(default[:1] * (limit.max_len + 1))
        return bad + [[*default[:-1], v] for v in outside(Limit(limit.low, limit.high, choices=limit.choices),
                                                            default[0])]
    kind = type(default)
    step = 1 if kind is int else 1e-3 * max(1.0, abs(limit.high if limit.high is not None else limit.low or 1.0))
    bad = [] if limit.low is None else [limit.low - step]
    bad += [] if limit.high is None else [limit.high + step, max(10 ** 9, 10 * limit.high)]
    if limit.choices:
        bad.append(max(limit.choices) + 1)
    bad = [kind(v) for v in bad]
    return bad + [math.nan, math.inf] if kind is float else bad


def _cases():
    for fig_id, spec in SPECS.items():
        for key, limit in spec.limits.items():
            for value in outside(limit, spec.params["tiny"][key]):
                shown = ",".join(map(str, value)) or "empty" if isinstance(value, list) else value
                yield pytest.param(fig_id, key, value, id=f"{fig_id}-{key}={shown}")


def test_every_number_and_list_parameter_of_every_figure_declares_its_range():
    missing = [f"{fig_id}: {key}" for fig_id, spec in SPECS.items() for key, value in spec.params["tiny"].items()
               if not isinstance(value, (bool, str)) and key not in spec.limits]
    assert not missing, missing
    assert len(SPECS) >= 65


@pytest.mark.parametrize("fig_id, key, value", list(_cases()))
def test_a_value_outside_its_range_is_refused_before_computing(fig_id, key, value):
    template = rf"^The '{key}' parameter of figure {re.escape(fig_id)} must .+\. Got .+ instead\.$"
    with pytest.raises(ValueError, match=template):
        SPECS[fig_id].resolve("tiny", {key: value})
