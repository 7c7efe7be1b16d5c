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
it a ``cpuinfo`` subprocess); udl therefore keeps ONE tracker per process and measures
each computation as a task of it (about 10 ms each after the first).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from typing import Iterator

GRID_G_PER_KWH = 475.0  # g CO2e per kWh: the world average (IEA 2019) that codecarbon falls back on
COUNTRY = "USA"  # the offline tracker wants a country; the intensity above overrides its grid
TICKS_S = 0.02  # the CPU time counters' resolution: 10 ms for user and for system time
_LOCK = threading.Lock()
_STATE: dict = {"tracker": None, "error": None, "warned": False, "setup_s": None, "grid": None, "depth": 0}


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
            info["cpu"] = {"cpu_load": f"TDP {tdp} W x this process's CPU load (no RAPL counters)",
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


@contextlib.contextmanager
def measuring() -> Iterator[dict]:
    """Measure the energy and CO2 of the block; yields a dict filled in when the block ends.

    Filled with ``measured`` (bool), ``kwh``, ``co2_kg``, ``grid_g_per_kwh``, ``method``,
    ``cpu_power_w``, ``ram_power_w``, ``gpu_power_w``, ``cpu_kwh``, ``ram_kwh``,
    ``gpu_kwh``, ``seconds`` (as the tracker timed it), ``cpu_model`` and
    ``overhead_s`` (the time spent starting and stopping the measurement); or, when not
    measured, ``measured=False`` and ``why``. Exceptions of the block propagate;
    the measurement's own never do.
    """
    energy: dict = {}
    tracker = None
    overhead = time.perf_counter()
    if not enabled():
        energy.update(not_measured("turned off by $UDL_ENERGY"))
    elif _STATE.get("depth", 0):  # codecarbon measures one task at a time: the outer block counts this one
        energy.update(not_measured("inside another measurement, which includes it"))
    else:
        try:
            tracker = _tracker()
            tracker.start_task("figure")
        except Exception as error:  # noqa: BLE001
            tracker = None
            energy.update(not_measured(str(error)))
            _warn_once(str(error))
    overhead = time.perf_counter() - overhead
    if tracker is not None:
        _STATE["depth"] = _STATE.get("depth", 0) + 1
    try:
        yield energy
    finally:
        if tracker is not None:
            _STATE["depth"] -= 1
            stop = time.perf_counter()
            try:
                data = tracker.stop_task()
                energy.update(_entry(tracker, data))
                energy["overhead_s"] = round(overhead + time.perf_counter() - stop, 4)
            except Exception as error:  # noqa: BLE001
                why = f"codecarbon failed to stop: {type(error).__name__}: {error}"
                energy.clear()
                energy.update(not_measured(why))
                _warn_once(why)


def _entry(tracker, data) -> dict:
    kwh = float(data.energy_consumed)
    if not kwh >= 0:
        raise ValueError(f"negative or NaN energy {kwh}")
    method = _method(tracker)
    return {"measured": True, "kwh": kwh, "co2_kg": float(data.emissions),
            "grid_g_per_kwh": _STATE["grid"],  # read once, when the process's tracker started
            "method": f"codecarbon {_version()} offline, tracking this process; CPU: {method['cpu']}; "
                      f"RAM: {method['ram']}; GPU: {method['gpu']}",
            "cpu_power_w": float(data.cpu_power), "ram_power_w": float(data.ram_power),
            "gpu_power_w": float(data.gpu_power), "cpu_tdp_w": method.get("cpu_tdp_w"),
            "cpu_kwh": float(data.cpu_energy), "ram_kwh": float(data.ram_energy), "gpu_kwh": float(data.gpu_energy),
            "seconds": float(data.duration), "cpu_model": data.cpu_model, "pue": float(data.pue)}


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
    ticks, so a short block may see up to 20 ms more CPU time than it lasted), RAM's
    part at most its power x seconds, where seconds include ``overhead_s`` (codecarbon
    times its parts from slightly different instants around the block; a few ms) and
    ``slack`` allows a relative difference of the clocks.
    """
    kwh, co2 = energy["kwh"], energy["co2_kg"]
    ok = abs(co2 - kwh * energy["grid_g_per_kwh"] / 1000) <= 1e-6 * max(abs(co2), 1e-30) + 1e-18
    ok &= abs(kwh - (energy["cpu_kwh"] + energy["ram_kwh"] + energy["gpu_kwh"])) <= 1e-6 * kwh + 1e-18
    hours = (energy["seconds"] + energy.get("overhead_s", 0.0)) / 3600  # its clocks also run while it stops
    if energy.get("cpu_tdp_w") and "CPU load" in energy["method"]:
        ok &= energy["cpu_kwh"] <= energy["cpu_tdp_w"] / 1000 * (hours + TICKS_S / 3600) * slack + 1e-15
    ok &= energy["ram_kwh"] <= energy["ram_power_w"] / 1000 * hours * slack + 1e-15
    return bool(ok)
