"""udl.schedule: expected times, the two-ended scheduler (makespans against brute force), eta, resolve_jobs."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from udl import schedule
from udl.registry import load_all
from udl.schedule import Scheduler, expected_seconds, makespan, resolve_jobs, simulate


def optimum(times: list[float], processes: int) -> float:
    """The best makespan of ``times`` on ``processes`` identical lanes, by trying every assignment."""
    best = float("inf")
    for assignment in itertools.product(range(processes), repeat=len(times) - 1):
        loads = [0.0] * processes
        loads[0] = times[0]  # lanes are interchangeable: the first job goes on lane 0
        for t, lane in zip(times[1:], assignment):
            loads[lane] += t
        best = min(best, max(loads))
    return best


def quickest_first(times: dict[str, float], processes: int) -> float:
    """The makespan of handing out the quickest figure left to every free lane."""
    free = [0.0] * processes
    for t in sorted(times.values()):
        lane = free.index(min(free))
        free[lane] += t
    return max(free)


# --------------------------------------------------------------------------- the scheduler
@pytest.mark.parametrize("quick_share", [0.1, 1.0])
@pytest.mark.parametrize("processes", [2, 3])
def test_two_ended_makespan_is_within_four_thirds_of_the_optimum(processes, quick_share):
    rng = random.Random(0)
    worst, wins, cases = 0.0, 0, 300
    for _ in range(cases):
        n = rng.randint(processes + 1, 8)
        # mixes of many quick and a few long figures, as in the gallery, and uniform ones
        times = [round(rng.choice([rng.uniform(0.1, 2), rng.uniform(1, 10), rng.uniform(20, 100)]), 2)
                 for _ in range(n)]
        expected = {f"f{i}": t for i, t in enumerate(times)}
        ours = makespan(simulate(expected, processes, quick_share=quick_share))
        best = optimum(times, processes)
        worst = max(worst, ours / best)
        naive = quickest_first(expected, processes)
        assert ours <= naive + 1e-9 or ours / best <= 4 / 3 + 1e-9
        wins += ours < naive - 1e-9
    assert worst <= 4 / 3 + 1e-9, worst
    assert wins > cases // 4  # strictly better than quickest-first in many cases


def test_long_figures_start_at_once_and_beat_quickest_first_on_the_gallery_timings():
    full = schedule.shipped_timings()["full"]
    ours = makespan(simulate(full, 2))
    always_quick = makespan(simulate(full, 2, quick_share=1.0))
    naive = quickest_first(full, 2)
    bound = max(max(full.values()), sum(full.values()) / 2)  # no schedule beats this
    # quickest-first leaves the longest figure for last, running alone; ours ends within 0.5% of the bound
    assert bound - 1e-9 <= ours <= bound * 1.005 < always_quick < naive
    plan = simulate(full, 2)
    assert plan[0][:2] == (0, max(full, key=full.get)) and plan[1][:2] == (1, min(full, key=full.get))
    shown_in_a_minute = sum(1 for lane, _, start, end in plan if end <= 60)
    assert shown_in_a_minute >= len(full) // 2  # half the gallery within a minute


def test_lane_order_two_lanes():
    s = Scheduler({"a": 1.0, "b": 5.0, "c": 3.0, "d": 2.0, "e": 9.0}, 2, quick_share=1.0)
    assert s.next(1) == "a"  # the quick lane: quickest first
    assert s.next(0) == "e"  # the long lane: longest first
    assert s.next(1) == "d" and s.next(0) == "b" and s.next(1) == "c"
    assert s.next(0) is None and s.next(1) is None and s.pending == []


def test_the_quick_lane_turns_to_the_longest_after_its_share():
    expected = {f"q{i}": 1.0 for i in range(4)} | {"l1": 20.0, "l2": 30.0, "l3": 16.0, "m": 9.0}
    s = Scheduler(expected, 2)  # total 79: the quick lane spends 10% of 39.5 s = 3.95 s on quick figures
    assert [s.next(1) for _ in range(4)] == ["q0", "q1", "q2", "q3"]  # 4 s >= 3.95 s: share spent
    assert s.next(1) == "l2" and s.next(0) == "l1" and s.next(1) == "l3" and s.next(0) == "m"
    lpt = Scheduler(expected, 2, quick_share=0.0)
    assert (lpt.next(1), lpt.next(0), lpt.next(1)) == ("l2", "l1", "l3")
    assert Scheduler(expected, 1).order() == [(0, k) for k in sorted(expected, key=expected.get)]


def test_one_lane_takes_the_quickest_first_and_ties_go_in_the_given_order():
    s = Scheduler({"x": 2.0, "y": 1.0, "z": 2.0, "w": 0.5}, 1)
    assert [s.next(0) for _ in range(5)] == ["w", "y", "x", "z", None]


def test_three_lanes_two_take_the_longest():
    s = Scheduler({f"f{i}": float(i) for i in range(1, 7)}, 3, quick_share=1.0)
    assert (s.next(0), s.next(1), s.next(2)) == ("f6", "f5", "f1")
    assert s.order() == [(0, "f6"), (1, "f5"), (2, "f1"), (2, "f2"), (2, "f3"), (1, "f4")]
    # the default: after f1 (1 s >= 10% of 21 / 3 s) the quick lane takes the longest left
    assert Scheduler({f"f{i}": float(i) for i in range(1, 7)}, 3).order() == [
        (0, "f6"), (1, "f5"), (2, "f1"), (2, "f4"), (1, "f3"), (2, "f2")]


def test_eta_decreases_as_work_finishes():
    expected = {"a": 1.0, "b": 4.0, "c": 2.0, "d": 3.0}
    s = Scheduler(expected, 2, quick_share=1.0)
    assert s.eta(now=0.0) == pytest.approx(sum(expected.values()) / 2)
    etas = [s.eta(now=0.0)]
    b = s.next(0)
    a = s.next(1)
    s.started(b, now=0.0)
    s.started(a, now=0.0)
    assert s.eta(now=0.0) == pytest.approx(5.0)  # nothing done yet: all the work over two lanes
    etas.append(s.eta(now=0.5))
    assert etas[-1] == pytest.approx((3.5 + 0.5 + 5.0) / 2)
    s.finished(a, 1.0)
    c = s.next(1)
    s.started(c, now=1.0)
    etas.append(s.eta(now=1.0))
    assert etas[-1] == pytest.approx((3.0 + 2.0 + 3.0) / 2)
    s.finished(c, 2.0)
    d = s.next(1)
    s.started(d, now=3.0)
    etas.append(s.eta(now=3.0))
    assert etas[-1] == pytest.approx(3.0)  # d alone needs 3 s, more than (1 + 3) / 2
    s.finished(b, 4.0)
    etas.append(s.eta(now=4.0))
    assert etas[-1] == pytest.approx(2.0)
    s.finished(d, 3.0)
    etas.append(s.eta(now=6.0))
    assert etas[-1] == 0.0
    assert all(x > y for x, y in zip(etas, etas[1:]))


def test_eta_adapts_to_a_machine_twice_as_slow_and_an_overrunning_figure_counts_zero():
    s = Scheduler({"a": 1.0, "b": 1.0, "c": 10.0}, 1)
    s.next(0)
    s.finished("a", 2.0)
    assert s.speed() == 2.0 and s.eta(now=0.0) == pytest.approx(22.0)
    s.next(0)
    s.started("b", now=0.0)
    assert s.eta(now=100.0) == pytest.approx(20.0)  # b is late: its remainder is 0, not negative
    assert Scheduler({"a": 1.0}, 1, calibrate=False).speed() == 1.0


def test_figures_from_the_cache_leave_the_speed_alone():
    s = Scheduler({"a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0}, 1)
    s.next(0)
    s.finished("a", 0.05)  # read from the cache, not said so: under a quarter of its time
    s.next(0)
    s.finished("b", 20.0, cached=True)  # said so
    assert s.speed() == 1.0 and s.eta(now=0.0) == pytest.approx(20.0)
    s.next(0)
    s.finished("c", 100.0)  # 10x slower: clamped to 4
    assert s.speed() == 4.0 and s.eta(now=0.0) == pytest.approx(40.0)


def test_started_and_finished_out_of_queue():
    s = Scheduler({"a": 1.0, "b": 2.0}, 2)
    s.started("a", now=0.0)  # started without next(): taken from the queue
    assert s.pending == ["b"] and "a" in s.running
    s.finished("b", 1.5)
    assert s.pending == [] and s.done == {"b": 1.5} and s.next(0) is None


@pytest.mark.parametrize("call, message", [
    (lambda: Scheduler([("a", 1.0)], 2), "The 'expected' parameter of Scheduler must be a dict"),
    (lambda: Scheduler({1: 1.0}, 2), "The 'expected' parameter of Scheduler must have figure ids (str) as keys"),
    (lambda: Scheduler({"a": -1.0}, 2), "The 'expected' parameter of Scheduler must give every figure finite "
                                         "seconds >= 0. Got -1.0 for 'a' instead."),
    (lambda: Scheduler({"a": float("nan")}, 2), "The 'expected' parameter of Scheduler must give every figure"),
    (lambda: Scheduler({"a": 1.0}, 0), "The 'processes' parameter of Scheduler must be a positive int"),
    (lambda: Scheduler({"a": 1.0}, 1.5), "The 'processes' parameter of Scheduler must be an int"),
    (lambda: Scheduler({"a": 1.0}, 1, calibrate=1), "The 'calibrate' parameter of Scheduler must be a bool"),
    (lambda: Scheduler({"a": 1.0}, 1, quick_share=1.5), "The 'quick_share' parameter of Scheduler must be a float"),
    (lambda: Scheduler({"a": 1.0}, 2).next(2), "The 'lane' parameter of Scheduler.next must be an int in [0, 1]"),
    (lambda: Scheduler({"a": 1.0}, 2).next(-1), "The 'lane' parameter of Scheduler.next must be an int in [0, 1]"),
    (lambda: Scheduler({"a": 1.0}, 2).started("b"), "The 'fig_id' parameter of Scheduler.started must be one of"),
    (lambda: Scheduler({"a": 1.0}, 2).finished("a", -2.0), "The 'seconds' parameter of Scheduler.finished"),
    (lambda: Scheduler({"a": 1.0}, 2).finished("a", 1.0, cached=1), "The 'cached' parameter of Scheduler.finished"),
])
def test_bad_arguments_get_one_line(call, message):
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


# --------------------------------------------------------------------------- expected times
def write_record(folder, fig_id, **fields):
    rec = {"id": fig_id, "preset": "tiny", "seconds": 3.25, "cached": False, "ok": True, **fields}
    (folder / f"{fig_id}.json").write_text(json.dumps(rec))


def test_expected_seconds_prefers_computed_records_then_shipped_timings_then_the_median(tmp_path, monkeypatch):
    monkeypatch.setattr(schedule, "shipped_timings", lambda: {"tiny": {"s1": 2.0, "s2": 4.0, "s3": 9.0}})
    write_record(tmp_path, "r1")  # computed here: 3.25 s
    write_record(tmp_path, "s1", seconds=7.0)  # a record wins over the shipped time
    write_record(tmp_path, "s2", cached=True, seconds=0.01)  # read from the cache: says nothing
    write_record(tmp_path, "s3", preset="full", seconds=99.0)  # another preset
    write_record(tmp_path, "r2", ok=False, seconds=0.2)  # failed early
    (tmp_path / "r3.json").write_text("{not json")
    got = expected_seconds(["r1", "s1", "s2", "s3", "r2", "r3", "new"], "tiny", tmp_path)
    known = {"r1": 3.25, "s1": 7.0, "s2": 4.0, "s3": 9.0}
    assert got == {**known, "r2": 5.5, "r3": 5.5, "new": 5.5}  # median of 3.25, 4, 7, 9
    assert list(got) == ["r1", "s1", "s2", "s3", "r2", "r3", "new"]
    assert expected_seconds(["new"], "tiny") == {"new": 4.0}  # median of all shipped tiny timings
    monkeypatch.setattr(schedule, "shipped_timings", lambda: {})
    assert expected_seconds(["new"], "full", tmp_path) == {"new": 1.0}
    assert expected_seconds([], "full") == {}


def test_shipped_timings_cover_every_registered_figure_at_both_presets():
    data = schedule.shipped_timings()
    assert data["threads_per_process"] == 1 and data["machine"] and data["date"]
    for preset in ("tiny", "full"):
        assert set(data[preset]) == set(load_all()), preset
        assert all(isinstance(v, (int, float)) and v >= 0 for v in data[preset].values())
    full = data["full"]
    assert max(full, key=full.get) in {"12.12", "10.mnist1d", "12.10", "8.double-descent"}
    assert expected_seconds(["10.mnist1d"], "full") == {"10.mnist1d": full["10.mnist1d"]}


@pytest.mark.parametrize("kwargs, message", [
    (dict(ids=["3.5"], preset="huge"), "The 'preset' parameter of expected_seconds must be one of"),
    (dict(ids="3.5", preset="tiny"), "The 'ids' parameter of expected_seconds must be an iterable of figure ids"),
    (dict(ids=[3.5], preset="tiny"), "The 'ids' parameter of expected_seconds must hold figure ids (str)"),
    (dict(ids=["3.5"], preset="tiny", out=3), "The 'out' parameter of expected_seconds must be a folder"),
])
def test_expected_seconds_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError)) as error:
        expected_seconds(**kwargs)
    assert str(error.value).startswith(message)


# --------------------------------------------------------------------------- resolve_jobs
def test_resolve_jobs(monkeypatch):
    monkeypatch.setattr(schedule, "usable_cpus", lambda: 6)
    monkeypatch.delenv("UDL_NUM_THREADS", raising=False)
    assert resolve_jobs("auto") == 6 and resolve_jobs(" AUTO ") == 6
    monkeypatch.setenv("UDL_NUM_THREADS", "2")
    assert resolve_jobs("auto") == 3  # processes x threads = the CPUs
    monkeypatch.setenv("UDL_NUM_THREADS", "16")
    assert resolve_jobs("auto") == 1
    assert resolve_jobs(3) == 3 and resolve_jobs("4") == 4 and type(resolve_jobs("4")) is int
    monkeypatch.setenv("UDL_NUM_THREADS", "lots")
    with pytest.raises(ValueError, match="UDL_NUM_THREADS must be a positive int or 'all'"):
        resolve_jobs("auto")


def test_usable_cpus_is_the_affinity_set():
    import os

    assert schedule.usable_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("jobs, error, message", [
    (0, ValueError, "The 'jobs' parameter of build_gallery must be a positive int. Got 0 instead."),
    ("0", ValueError, "The 'jobs' parameter of build_gallery must be a positive int. Got 0 instead."),
    ("two", ValueError, "The 'jobs' parameter of build_gallery must be 'auto' or a positive int. Got 'two' instead."),
    (2.0, TypeError, "The 'jobs' parameter of build_gallery must be 'auto' or a positive int. Got 2.0 instead."),
    (True, TypeError, "The 'jobs' parameter of build_gallery must be 'auto' or a positive int. Got True instead."),
    (None, TypeError, "The 'jobs' parameter of build_gallery must be 'auto' or a positive int. Got None instead."),
])
def test_resolve_jobs_bad_values(jobs, error, message):
    with pytest.raises(error) as caught:
        resolve_jobs(jobs)
    assert str(caught.value) == message
    with pytest.raises(error, match="^The 'jobs' parameter of udl.gallery.build_gallery must"):
        resolve_jobs(jobs, owner="udl.gallery.build_gallery")


def test_schedule_imports_neither_torch_nor_matplotlib():
    import subprocess
    import sys

    code = ("import sys, udl.schedule as s; s.expected_seconds(['3.5'], 'tiny'); s.resolve_jobs('auto'); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
