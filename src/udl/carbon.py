"""The energy and CO2 of a computation, measured with codecarbon's offline tracker.

The runner wraps every figure's computation in :func:`measuring`; the record's
``"energy"`` entry is what it yields. Measuring never fails a figure: when codecarbon
is missing, turned off (``$UDL_ENERGY=off``) or raises, the entry says ``"measured":
False`` and why, and a one-line ``udl: warning`` says so once per process.

How codecarbon measures here: on Linux it reads the CPU's energy counters (RAPL) when
``/sys/class/powercap`` offers them; otherwise (virtual machines, containers) it
estimates the CPU's power as its thermal design power (TDP, looked up by model, or
4 W per thread for an unknown model) times this process's share of the CPU load,
and RAM's power as a constant. The entry's ``"method"`` states which was used. The
CO2 is the energy times a stated grid intensity (``GRID_G_PER_KWH``, the world
average codecarbon falls back on, or ``$UDL_GRID_G_PER_KWH``), not the local grid's.

Codecarbon's first tracker in a process detects the hardware (about 1.4 s here, most of
it a ``cpuinfo`` subprocess and its table of CPU powers); udl therefore keeps ONE
tracker per process and measures each computation as a task of it (about 10 ms each),
and remembers codecarbon's CPU lookup (model, TDP) in udl's cache folder
(``codecarbon-cpu.json``, keyed by /proc/cpuinfo's model name, the CPU count and
codecarbon's version), so later processes on the same machine start in about 0.1 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

GRID_G_PER_KWH = 475.0  # g CO2e per kWh: the world average (IEA 2019) that codecarbon falls back on
COUNTRY = "USA"  # the offline tracker wants a country; the intensity above overrides its grid
TICKS_S = 0.02  # the CPU time counters' resolution: 10 ms for user and for system time
_LOCK = threading.Lock()
_STATE: dict = {"tracker": None, "error": None, "warned": False, "setup_s": None, "grid": None}


def grid_intensity() -> float:
    """The grid intensity used, in g CO2e per kWh (``$UDL_GRID_G_PER_KWH`` or ``GRID_G_PER_KWH``)."""
    text = os.environ.get("UDL_GRID_G_PER_KWH", "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < 5000:
            raise ValueError(f"$UDL_GRID_G_PER_KWH must be a number of g CO2e per kWh in (0, 5000). "
                             f"Got {text!r} instead.")
        return value
    return GRID_G_PER_KWH


def enabled() -> bool:
    """False when ``$UDL_ENERGY`` is ``off`` (or ``0``, ``no``, ``false``)."""
    return os.environ.get("UDL_ENERGY", "on").strip().lower() not in {"off", "0", "no", "false"}


def not_measured(why: str) -> dict:
    """The energy entry of a computation that was not measured, saying why."""
    return {"measured": False, "why": why, "kwh": None, "co2_kg": None}


def _quiet_logger() -> None:
    """Codecarbon logs at INFO and WARNING on its own handler: silence it (errors reach udl as exceptions)."""
    log = logging.getLogger("codecarbon")
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False


def _cpu_key() -> str | None:
    """This machine's CPU as a key for the remembered lookup (None when /proc/cpuinfo cannot say)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return None
    names = {line.split(":", 1)[1].strip() for line in lines if line.startswith("model name") and ":" in line}
    if len(names) != 1:
        return None
    return f"{platform.machine()}|{names.pop()}|{os.cpu_count()}|codecarbon {_version()}"


def _cpu_file() -> Path:
    from udl.cache import cache_dir

    return cache_dir() / "codecarbon-cpu.json"


def _recall_cpu() -> str:
    """Give codecarbon its CPU lookup from udl's cache when this CPU was seen before; where the TDP came from.

    Sets ``codecarbon.core.hardware_cache._tdp`` (private: any surprise, and codecarbon detects as usual).
    """
    try:
        from codecarbon.core import hardware_cache

        key = _cpu_key()
        if key is None or getattr(hardware_cache, "_tdp", "absent") is not None:
            return "codecarbon's lookup"
        known = json.loads(_cpu_file().read_text()).get(key)
        if known and isinstance(known.get("model"), str) and float(known["tdp"]) > 0:
            hardware_cache._tdp = SimpleNamespace(model=known["model"], tdp=float(known["tdp"]))
            return "codecarbon's lookup, remembered in udl's cache"
    except Exception:  # noqa: BLE001 - absent, unreadable or another codecarbon: detect as usual
        pass
    return "codecarbon's lookup"


def _remember_cpu() -> None:
    """Store codecarbon's CPU lookup for the next process (best effort: the cache only saves time)."""
    try:
        from codecarbon.core import hardware_cache

        from udl.cache import atomic_write

        key, tdp = _cpu_key(), getattr(hardware_cache, "_tdp", None)
        if key is None or tdp is None or isinstance(tdp, SimpleNamespace) or not tdp.tdp:
            return
        path = _cpu_file()
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known[key] = {"model": tdp.model, "tdp": float(tdp.tdp)}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(known, indent=1).encode())
    except Exception:  # noqa: BLE001
        pass


def _tracker():
    """The process's tracker (made on first use), or raise the reason it cannot be made."""
    with _LOCK:
        if _STATE["error"] is not None:
            raise RuntimeError(_STATE["error"])
        if _STATE["tracker"] is None:
            start = time.perf_counter()
            try:
                from codecarbon import OfflineEmissionsTracker

                _quiet_logger()  # after the import, which sets codecarbon's logger up
                _STATE["tdp_source"] = _recall_cpu()

                # every setting explicit, so no .codecarbon.config or $CODECARBON_* changes udl's numbers
                # or makes it write files; measure_power_secs long: a task is measured at its start and stop
                grid = grid_intensity()
                tracker = OfflineEmissionsTracker(
                    country_iso_code=COUNTRY, force_carbon_intensity_g_co2e_kwh=grid,
                    output_methods=[], output_handlers=[], log_level="critical", project_name="udl",
                    measure_power_secs=3600, tracking_mode="process", allow_multiple_runs=True, pue=1.0,
                    force_cpu_power=None, force_ram_power=None, gpu_ids=None)
                _quiet_logger()  # the tracker sets its own level
                tracker.start_task("udl-setup")  # hardware detection happens here, once
                tracker.stop_task()
                _remember_cpu()
            except Exception as error:  # noqa: BLE001 - any failure: not measured, never a failed figure
                _STATE["error"] = f"codecarbon could not start: {type(error).__name__}: {error}"
                raise RuntimeError(_STATE["error"]) from None
            _STATE["tracker"], _STATE["setup_s"], _STATE["grid"] = tracker, time.perf_counter() - start, grid
        return _STATE["tracker"]


def _method(tracker) -> dict:
    """How the tracker measures on this machine, from its hardware objects (private in codecarbon)."""
    info: dict = {"cpu": "unknown", "ram": "unknown", "gpu": "none"}
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            mode = getattr(hw, "_mode", "unknown")
            tdp = getattr(hw, "_tdp", None)
            info["cpu_tdp_w"] = tdp
            info["cpu"] = {"cpu_load": f"TDP {'?' if tdp is None else format(float(tdp), 'g')} W x this process's CPU load "
                                       f"(no RAPL counters)",
                           "intel_rapl": "RAPL energy counters"}.get(mode, str(mode))
        elif kind == "RAM":
            info["ram"] = "constant power estimate from the RAM size (codecarbon's rule)"
        elif kind == "GPU":
            info["gpu"] = "NVML energy counters"
    return info


def _warn_once(why: str) -> None:
    if not _STATE["warned"]:
        _STATE["warned"] = True
        warnings.warn(f"energy not measured: {why}", stacklevel=1)  # udl's file: one line on the CLI


_PARTS = ("kwh", "co2_kg", "cpu_kwh", "ram_kwh", "gpu_kwh", "seconds")


def _add(acc: dict, data) -> None:
    """Add one codecarbon task (an EmissionsData) to an accumulator."""
    part = {"kwh": data.energy_consumed, "co2_kg": data.emissions, "cpu_kwh": data.cpu_energy,
            "ram_kwh": data.ram_energy, "gpu_kwh": data.gpu_energy, "seconds": data.duration}
    for key, value in part.items():
        value = float(value)
        if not value >= 0:
            raise ValueError(f"codecarbon gave {key} = {value}")
        acc[key] += value
    acc["segments"] += 1
    acc["last"] = data


def _merge(acc: dict, inner: dict) -> None:
    for key in _PARTS + ("segments",):
        acc[key] += inner[key]


@contextlib.contextmanager
def measuring() -> Iterator[dict]:
    """Measure the energy and CO2 of the block; yields a dict filled in when the block ends.

    Filled with ``measured`` (bool), ``kwh``, ``co2_kg``, ``grid_g_per_kwh``, ``method``,
    ``cpu_power_w``, ``ram_power_w``, ``gpu_power_w`` (mean powers), ``cpu_kwh``,
    ``ram_kwh``, ``gpu_kwh``, ``seconds`` (as the tracker timed it), ``cpu_model``,
    ``cpu_tdp_w`` and ``cpu_tdp_source`` (codecarbon's lookup, or udl's memory of it),
    ``pue``, ``segments`` and ``overhead_s`` (the time spent starting and stopping the
    measurement); or, when not measured, ``measured=False`` and ``why``. Blocks nest:
    codecarbon measures one task at a time, so an inner block pauses the outer one's
    task and its energy is added to the outer's (``segments`` counts the tasks).
    Exceptions of the block propagate; the measurement's own never do.
    """
    energy: dict = {}
    tracker = None
    stack = _STATE.setdefault("stack", [])
    overhead = time.perf_counter()
    if not enabled():
        energy.update(not_measured("turned off by $UDL_ENERGY"))
    else:
        try:
            tracker = _tracker()
            if stack:  # pause the outer block's task
                _add(stack[-1], tracker.stop_task())
            tracker.start_task("udl")
        except Exception as error:  # noqa: BLE001
            tracker = None
            energy.update(not_measured(str(error)))
            _warn_once(str(error))
    overhead = time.perf_counter() - overhead
    acc = dict.fromkeys(_PARTS, 0.0) | {"segments": 0, "last": None, "overhead_s": overhead}
    if tracker is not None:
        stack.append(acc)
    try:
        yield energy
    finally:
        if tracker is not None:
            stack.remove(acc)
            stop = time.perf_counter()
            try:
                _add(acc, tracker.stop_task())
                if stack:  # the outer block includes this one, and goes on
                    _merge(stack[-1], acc)
                    tracker.start_task("udl")
                acc["overhead_s"] += time.perf_counter() - stop
                if stack:
                    stack[-1]["overhead_s"] += acc["overhead_s"]
                energy.update(_entry(tracker, acc))
            except Exception as error:  # noqa: BLE001
                why = f"codecarbon failed to stop: {type(error).__name__}: {error}"
                energy.clear()
                energy.update(not_measured(why))
                _warn_once(why)


def _entry(tracker, acc: dict) -> dict:
    data, hours = acc["last"], acc["seconds"] / 3600
    method = _method(tracker)

    def mean_power(kwh):
        return kwh * 1000 / hours if hours > 0 else 0.0

    return {"measured": True, "kwh": acc["kwh"], "co2_kg": acc["co2_kg"],
            "grid_g_per_kwh": _STATE["grid"],  # read once, when the process's tracker started
            "method": f"codecarbon {_version()} offline, tracking this process; CPU: {method['cpu']}; "
                      f"RAM: {method['ram']}; GPU: {method['gpu']}",
            "cpu_power_w": mean_power(acc["cpu_kwh"]), "ram_power_w": float(data.ram_power),
            "gpu_power_w": mean_power(acc["gpu_kwh"]), "cpu_tdp_w": method.get("cpu_tdp_w"),
            "cpu_tdp_source": _STATE.get("tdp_source", "?"),
            "cpu_kwh": acc["cpu_kwh"], "ram_kwh": acc["ram_kwh"], "gpu_kwh": acc["gpu_kwh"],
            "seconds": acc["seconds"], "cpu_model": data.cpu_model, "pue": float(data.pue),
            "segments": acc["segments"], "overhead_s": round(acc["overhead_s"], 4)}


def _version() -> str:
    try:
        from codecarbon import __version__
    except Exception:  # noqa: BLE001
        return "?"
    return __version__


def setup_seconds() -> float | None:
    """How long the process's tracker took to start (hardware detection), None before it started."""
    return _STATE["setup_s"]


def consistent(energy: dict, slack: float = 1.05) -> bool:
    """Whether a measured entry's numbers agree with each other.

    CO2 = kWh x intensity (relative 1e-6); kWh = CPU + RAM + GPU parts; and, for the
    load-based CPU estimate, the CPU part at most TDP x (seconds + 0.02 s) (a process's
    load is at most the whole CPU; its user and system CPU times are counted in 10 ms
    ticks, so a short block may see up to 20 ms more CPU time than it lasted, per segment), RAM's
    part at most its power x seconds, where seconds include ``overhead_s`` (codecarbon
    times its parts from slightly different instants around the block; a few ms) and
    ``slack`` allows a relative difference of the clocks.
    """
    kwh, co2 = energy["kwh"], energy["co2_kg"]
    ok = abs(co2 - kwh * energy["grid_g_per_kwh"] / 1000) <= 1e-6 * max(abs(co2), 1e-30) + 1e-18
    ok &= abs(kwh - (energy["cpu_kwh"] + energy["ram_kwh"] + energy["gpu_kwh"])) <= 1e-6 * kwh + 1e-18
    hours = (energy["seconds"] + energy.get("overhead_s", 0.0)) / 3600  # its clocks also run while it stops
    if energy.get("cpu_tdp_w") and "CPU load" in energy["method"]:
        ticks = TICKS_S * energy.get("segments", 1) / 3600
        ok &= energy["cpu_kwh"] <= energy["cpu_tdp_w"] / 1000 * (hours + ticks) * slack + 1e-15
    ok &= energy["ram_kwh"] <= energy["ram_power_w"] / 1000 * hours * slack + 1e-15
    return bool(ok)
