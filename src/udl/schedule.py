"""Which figure each of ``udl gallery``'s processes computes next, and how long the rest will take.

The gallery's total time is decided by its longest figures: started last, one of them
runs alone while the other cores idle. Started first, they overlap the many quick
figures. A gallery that is watched should also fill in at once. :class:`Scheduler`
does both with two ends of one sorted queue: lanes ``0 .. P-2`` take the longest
figure left, lane ``P-1`` the quickest, so the page shows pictures within seconds
while the long figures are already computing. Once the quick lane has done its share
of quick figures (``quick_share`` of a lane's work, 10% by default) it too takes the
longest left, so the quickest figures are kept for the end, where they fill the gaps
(as in longest-processing-time-first scheduling, whose makespan is within 4/3 of the
best). On the shipped full-preset timings with 2 processes the plan ends 0.1% after
the lower bound (total / 2); with the quick lane always taking the quickest, 3.1%
after (36 s); handing every lane the quickest, 6.2% (73 s).

The expected times come from :func:`expected_seconds`: records already in the output
folder, else the timings shipped in ``udl/timings.json`` (measured on an idle 2-core
machine, one torch thread per process), else the median of the known ones.

This module imports neither torch nor matplotlib, so a gallery can show its queued
page before those load.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import statistics
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

from udl.validate import check_choice, check_float, check_int

__all__ = ["expected_seconds", "Scheduler", "resolve_jobs", "simulate", "makespan", "shipped_timings",
           "usable_cpus"]

PRESETS = ("tiny", "full")  # as udl.registry.PRESETS (not imported: that module loads numpy)
DEFAULT_SECONDS = 1.0  # the guess when nothing at all is known
THREADS_ENV = "UDL_NUM_THREADS"  # as udl.devices.THREADS_ENV (not imported: that module loads torch)


# --------------------------------------------------------------------------- expected times
@lru_cache(maxsize=1)
def shipped_timings() -> dict:
    """The timings shipped with udl: ``{"machine": ..., "date": ..., preset: {id: seconds}}``.

    An unreadable or missing file gives ``{}`` (the schedule then falls back on medians).
    """
    try:
        text = resources.files("udl").joinpath("timings.json").read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _good_seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _recorded_seconds(out: Path, fig_id: str, preset: str) -> float | None:
    """The seconds of ``out/<id>.json`` when it was computed (not read from the cache) at ``preset``."""
    try:
        rec = json.loads((out / f"{fig_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(rec, dict) or rec.get("id") != fig_id or rec.get("preset") != preset or rec.get("cached")
            or rec.get("ok") is False or not _good_seconds(rec.get("seconds"))):
        return None  # a failed figure stopped early: its time says nothing of a full run
    return float(rec["seconds"])


def expected_seconds(ids: Iterable[str], preset: str, out: str | os.PathLike | None = None) -> dict[str, float]:
    """The expected computing time of each figure, in seconds, for one process with one thread.

    For each id, in this order: the ``seconds`` of ``out/<id>.json`` when that record was
    computed (not cached) at ``preset`` and succeeded; else the shipped timings
    (``udl/timings.json``); else the median of the times found for the other ids (or of
    all the shipped timings at ``preset``); else 1 s.

    Args:
        ids: figure ids (e.g. ``["3.5", "12.12"]``).
        preset: ``"tiny"`` or ``"full"``.
        out: a gallery's output folder whose records are read; None reads none.

    Returns:
        ``{id: seconds}`` in the order of ``ids``.

    Example:
        >>> expected_seconds(["3.5", "no-such-figure"], "tiny")["no-such-figure"] > 0
        True
    """
    owner = "expected_seconds"
    check_choice(preset, "preset", owner, PRESETS)
    if isinstance(ids, str):
        raise TypeError(f"The 'ids' parameter of {owner} must be an iterable of figure ids. Got {ids!r} instead.")
    ids = list(ids)
    for fig_id in ids:
        if not isinstance(fig_id, str):
            raise TypeError(f"The 'ids' parameter of {owner} must hold figure ids (str). Got {fig_id!r} instead.")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"The 'out' parameter of {owner} must be a folder (a path) or None. Got {out!r} instead.")
    folder = None if out is None else Path(out)
    shipped = shipped_timings().get(preset, {})
    shipped = shipped if isinstance(shipped, dict) else {}
    known: dict[str, float] = {}
    for fig_id in ids:
        seconds = _recorded_seconds(folder, fig_id, preset) if folder is not None else None
        if seconds is None and _good_seconds(shipped.get(fig_id)):
            seconds = float(shipped[fig_id])
        if seconds is not None:
            known[fig_id] = seconds
    pool = list(known.values()) or [float(v) for v in shipped.values() if _good_seconds(v)]
    guess = statistics.median(pool) if pool else DEFAULT_SECONDS
    return {fig_id: known.get(fig_id, guess) for fig_id in ids}


# --------------------------------------------------------------------------- the scheduler
class Scheduler:
    """Hands out figure ids to ``processes`` lanes: the longest first on all lanes but the last, the quickest there.

    A lane is one worker process (numbered ``0 .. processes-1``). When a lane is free it
    asks :meth:`next` for a figure. With two lanes or more, lanes ``0 .. P-2`` take the
    longest figure left (longest-processing-time first, which keeps the last figure from
    running alone) and lane ``P-1`` the quickest left (so the first pictures come within
    seconds), until the quick lane has taken ``quick_share`` of one lane's expected work;
    then it takes the longest left too, and the quickest figures fill the ends of the
    lanes. With one lane, the quickest first. Ties go by id order as given.

    :meth:`eta` estimates the seconds left: the expected work not yet done, spread over
    the lanes, never less than what the longest running figure still needs. Once figures
    have finished, the expectations are scaled by how fast this machine was on them
    (``actual / expected``, clamped to [0.25, 4]), so the estimate adapts to a faster or
    busier machine than the one that measured the timings (figures read from the cache
    left out).

    Args:
        expected: ``{figure id: expected seconds}`` (see :func:`expected_seconds`).
        processes: the number of lanes (positive int).
        quick_share: the part of one lane's expected work (total / processes) that the
            quick lane spends on the quickest figures before it takes the longest ones.
            1 keeps it on the quickest to the end; 0 makes every lane longest-first.
            Default: 0.1.
        calibrate: scale the remaining expectations by the speed seen so far. Default: True.

    Example:
        >>> s = Scheduler({"a": 1.0, "b": 5.0, "c": 3.0}, processes=2)
        >>> s.next(0), s.next(1)  # lane 0 takes the longest, lane 1 the quickest
        ('b', 'a')
        >>> s.finished("a", 1.0); s.next(1), s.next(1)
        ('c', None)
    """

    def __init__(self, expected: dict[str, float], processes: int, *, quick_share: float = 0.1,
                 calibrate: bool = True):
        owner = "Scheduler"
        if not isinstance(expected, dict):
            raise TypeError(f"The 'expected' parameter of {owner} must be a dict of figure id -> seconds. "
                            f"Got {expected!r} instead.")
        for fig_id, seconds in expected.items():
            if not isinstance(fig_id, str):
                raise TypeError(f"The 'expected' parameter of {owner} must have figure ids (str) as keys. "
                                f"Got {fig_id!r} instead.")
            if not _good_seconds(seconds):
                raise ValueError(f"The 'expected' parameter of {owner} must give every figure finite seconds >= 0. "
                                 f"Got {seconds!r} for {fig_id!r} instead.")
        self.processes = check_int(processes, "processes", owner)
        if not isinstance(calibrate, bool):
            raise TypeError(f"The 'calibrate' parameter of {owner} must be a bool. Got {calibrate!r} instead.")
        self.calibrate = calibrate
        self.quick_share = check_float(quick_share, "quick_share", owner, low=0.0, high=1.0)
        self.expected = {k: float(v) for k, v in expected.items()}
        order = {fig_id: i for i, fig_id in enumerate(expected)}
        # ascending by time; ties by the given order, so equal times go in id order from the quick end
        self._queue = sorted(expected, key=lambda k: (self.expected[k], order[k]))
        self._lo, self._hi = 0, len(self._queue)  # the pending figures are _queue[_lo:_hi]
        self.running: dict[str, float] = {}  # id -> monotonic start time
        self.lanes: dict[str, int] = {}  # id -> the lane it was handed to
        self.done: dict[str, float] = {}  # id -> measured seconds
        # the expected seconds the quick lane spends on the quickest figures (with one lane: all of them)
        self._quick_budget = (math.inf if self.processes == 1
                              else self.quick_share * sum(self.expected.values()) / self.processes)
        self._quick_used = 0.0
        self._uncalibrated: set[str] = set()  # finished from the cache: says nothing of this machine's speed

    # ------------------------------------------------------------------ handing out
    @property
    def pending(self) -> list[str]:
        """The ids not handed out yet, quickest first."""
        return self._queue[self._lo:self._hi]

    def quick_lane(self, lane: int) -> bool:
        """Whether ``lane`` takes the quickest figure left now (the last lane, or the only one, within its share)."""
        return lane == self.processes - 1 and (self._quick_used < self._quick_budget or self.quick_share >= 1)

    def next(self, lane: int) -> str | None:
        """The id lane ``lane`` should compute now (marked as running from now), or None when none is left."""
        lane = check_int(lane, "lane", "Scheduler.next", minimum=0, maximum=self.processes - 1)
        if self._lo >= self._hi:
            return None
        if self.quick_lane(lane):
            fig_id = self._queue[self._lo]
            self._lo += 1
            self._quick_used += self.expected[fig_id]
        else:
            self._hi -= 1
            fig_id = self._queue[self._hi]
        self.lanes[fig_id] = lane
        self.running[fig_id] = time.monotonic()
        return fig_id

    def started(self, fig_id: str, now: float | None = None) -> None:
        """Note that ``fig_id`` started computing at ``now`` (``time.monotonic()``; default: now).

        :meth:`next` already marks a figure as running when it hands it out; call this
        when the computation really starts later (e.g. a queued process pool). An id
        still pending is taken out of the queue.
        """
        self._known(fig_id, "started")
        if fig_id in self.pending:
            self._queue.remove(fig_id)
            self._hi -= 1
        self.running[fig_id] = time.monotonic() if now is None else now

    def finished(self, fig_id: str, seconds: float | None = None, *, cached: bool = False) -> None:
        """Note that ``fig_id`` finished after ``seconds`` of computing (default: the time since it started).

        ``cached=True`` (a result read from the cache) leaves the speed estimate alone.
        """
        self._known(fig_id, "finished")
        if not isinstance(cached, bool):
            raise TypeError(f"The 'cached' parameter of Scheduler.finished must be a bool. Got {cached!r} instead.")
        if cached:
            self._uncalibrated.add(fig_id)
        if fig_id in self.pending:
            self._queue.remove(fig_id)
            self._hi -= 1
        start = self.running.pop(fig_id, None)
        if seconds is None:
            seconds = 0.0 if start is None else time.monotonic() - start
        self.done[fig_id] = check_float(seconds, "seconds", "Scheduler.finished", low=0.0)

    def _known(self, fig_id: str, method: str) -> None:
        if fig_id not in self.expected:
            raise ValueError(f"The 'fig_id' parameter of Scheduler.{method} must be one of the scheduled figures. "
                             f"Got {fig_id!r} instead.")

    # ------------------------------------------------------------------ estimates
    def speed(self) -> float:
        """Measured over expected seconds of the finished figures (1 before any, or without ``calibrate``).

        Figures finished from the cache (``finished(..., cached=True)``) or in under a quarter
        of their expected time (most likely cached, or failed early) do not count; the
        ratio is clamped to [0.25, 4].
        """
        if not self.calibrate:
            return 1.0
        counted = [k for k, secs in self.done.items()
                   if k not in self._uncalibrated and secs >= self.expected[k] / 4]
        expected = sum(self.expected[k] for k in counted)
        actual = sum(self.done[k] for k in counted)
        if expected <= 0 or actual <= 0:
            return 1.0
        return min(max(actual / expected, 0.25), 4.0)

    def eta(self, now: float | None = None) -> float:
        """The expected seconds until every figure is done, from ``now`` (``time.monotonic()``; default: now).

        The remaining work (pending figures, plus each running figure's expected time minus
        its elapsed time, at least 0) divided by the lanes, and never less than the longest
        remainder of a running figure (that one cannot be split).
        """
        now = time.monotonic() if now is None else check_float(now, "now", "Scheduler.eta")
        scale = self.speed()
        running = [max(self.expected[k] * scale - (now - start), 0.0) for k, start in self.running.items()]
        work = sum(self.expected[k] for k in self.pending) * scale + sum(running)
        return max(work / self.processes, max(running, default=0.0))

    def order(self) -> list[tuple[int, str]]:
        """The whole schedule as ``(lane, id)`` pairs, simulated from the expected times (does not change ``self``)."""
        return [(lane, fig_id) for lane, fig_id, _, _ in simulate(self.expected, self.processes,
                                                                  quick_share=self.quick_share)]


def simulate(expected: dict[str, float], processes: int, actual: dict[str, float] | None = None, *,
             quick_share: float = 0.1) -> list[tuple]:
    """Run a fresh :class:`Scheduler` on a clock: each lane asks for a figure as soon as it is free.

    ``actual`` gives the true seconds of each figure (default: ``expected``: a perfect
    forecast); ``quick_share`` as for :class:`Scheduler`. Returns ``(lane, id, start, end)``
    in the order the figures were handed out; the makespan is the largest ``end``.
    """
    scheduler = Scheduler(expected, processes, quick_share=quick_share, calibrate=False)
    actual = expected if actual is None else actual
    free = [(0.0, lane) for lane in range(scheduler.processes)]  # (time the lane is free, lane), sorted
    plan = []
    while free:
        at, lane = free.pop(0)
        fig_id = scheduler.next(lane)
        if fig_id is None:
            continue  # this lane is done; the others may still take figures
        end = at + float(actual[fig_id])
        plan.append((lane, fig_id, at, end))
        bisect.insort(free, (end, lane))
    return plan


def makespan(plan: list[tuple]) -> float:
    """The end of the last figure of a :func:`simulate` plan (0 for an empty one)."""
    return max((end for *_, end in plan), default=0.0)


# --------------------------------------------------------------------------- how many processes
def _threads_per_process() -> int:
    """The torch threads each figure process uses: ``$UDL_NUM_THREADS`` as :func:`udl.devices.cpu_threads` reads it."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 1
    if value.lower() == "all":
        return os.cpu_count() or 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    from udl.devices import cpu_threads  # raises its one-line error for a bad value

    return cpu_threads()


def usable_cpus() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | str, owner: str = "build_gallery") -> int:
    """The number of figure processes for ``udl gallery --jobs``: ``"auto"`` or a positive int.

    ``"auto"`` is one process per usable CPU, each with one torch thread
    (:func:`udl.devices.cpu_threads`; with ``$UDL_NUM_THREADS=k`` it is CPUs // k
    processes, at least one). Measured on 2-core machines (``benchmarks/gallery_time.py``,
    ``benchmarks/cpu_threads.py``): 2 processes x 1 thread beats 1 x 2, since udl's
    networks are too small for one figure to use two cores well.

    ``owner`` names the caller in error messages. Default: "build_gallery".

    Raises:
        ValueError: ``jobs`` is neither ``"auto"`` nor a positive int (a numeric string is accepted).
    """
    if isinstance(jobs, str):
        text = jobs.strip().lower()
        if text == "auto":
            return max(usable_cpus() // _threads_per_process(), 1)
        if not text.isdigit():
            raise ValueError(f"The 'jobs' parameter of {owner} must be 'auto' or a positive int. "
                             f"Got {jobs!r} instead.")
        jobs = int(text)
    if isinstance(jobs, bool) or not isinstance(jobs, int) and not hasattr(jobs, "__index__"):
        raise TypeError(f"The 'jobs' parameter of {owner} must be 'auto' or a positive int. "
                        f"Got {jobs!r} instead.")
    return check_int(jobs, "jobs", owner)
