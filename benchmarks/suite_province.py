"""A generated province through ``geosvc batch`` on Dask (ISSUE 17).

The province (:func:`geosvc.batch.generate_province`: 5 x 4 generated districts at scale
0.85, seeds 7..26, joined along their shared borders, about 1.04 million households, about
52,000 per district, with stations and gated compounds right on the borders; ``--quick``:
2 x 2 districts at scale 0.3) is run in the same benchmark process

* with one local Dask worker process (``local:1``, numba and GEOS on both cores), with one
  worker limited to one thread (``GEOSVC_THREADS=1``: the one-core baseline) and with two
  (``local:2``, one thread each): wall time of the whole batch (cluster start, partitions,
  merge, maps) and of the partition phase, the speed-ups, and every worker's peak resident
  memory (each partition records its worker's ``ru_maxrss``);
* the merged households and district tables of the two runs compared cell by cell
  (geometry included);
* ``geosvc batch`` in a child process killed (SIGKILL to its process group, the Dask
  workers with it) once half the partitions are written, then run again: the rerun must
  skip the finished partitions and give the same tables.

Every configuration runs twice (interleaved); of the quiet runs (other processes took at most
5 CPU s meanwhile, from ``/proc/stat``) the faster is kept, else the run they disturbed least:
the same rule for all three (every run is listed in info ``runs_<label>``).  When
other processes took more than 5 CPU s during a kept run, the speed-up is reported but its
verdict is UNDETERMINED: a shared machine's noise is not a result.

Goal (this 2-core machine, shared): speed-up from 1 to 2 workers >= 1.6x.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Recorder

__all__ = ["case_province", "SPEEDUP_GOAL"]

SPEEDUP_GOAL = 1.6
#: scale of every generated district and grid of districts (full, quick)
SIZES = {False: (0.85, (5, 4)), True: (0.3, (2, 2))}
SITING_K = 5
#: runs of each configuration (the faster quiet one is kept)
REPEATS = 2
#: CPU seconds other processes may take during a kept run for the speed-up to be a verdict
QUIET_CPU_S = 5.0


def _province(root: Path, quick: bool, rec: Recorder) -> dict[str, Path]:
    from geosvc.batch import generate_province

    scale, grid = SIZES[quick]
    folder = root / f"province-joined-{scale:g}-{grid[0]}x{grid[1]}"
    names = ("roads", "households", "facilities", "compounds", "communities", "districts")
    paths = {n: folder / f"{n}.gpkg" for n in names}
    if all(p.exists() for p in paths.values()):
        rec.info["province_generated_s"] = "reused"
        return paths
    t0 = time.perf_counter()
    generate_province(folder, seed=7, scale=scale, grid=grid)
    rec.info["province_generated_s"] = round(time.perf_counter() - t0, 1)
    return paths


def _config(paths: dict[str, Path], out: Path, where: Path) -> Path:
    cfg = where / "province.toml"
    cfg.write_text(f"""
[inputs]
roads = "{paths['roads']}"
households = "{paths['households']}"
facilities = "{paths['facilities']}"
compounds = "{paths['compounds']}"
[inputs.households_columns]
id = "building_id"
[[inputs.areas]]
level = "community"
path = "{paths['communities']}"
id = "community_id"
name = "name"
[batch]
districts = "{paths['districts']}"
id = "district_id"
scheduler = "local:2"
siting = "district"
[siting]
k = {SITING_K}
[output]
folder = "{out}"
lang = "en"
""", encoding="utf-8")
    return cfg


def _cpu_now() -> tuple[float, float] | None:
    """(CPU seconds the whole machine was busy, CPU seconds of this process and its reaped
    children, i.e. the Dask workers once the cluster is closed); None without /proc/stat."""
    import resource

    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(ticks) - ticks[3] - ticks[4]) / hz  # all but idle and iowait (steal counts)
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        own += r.ru_utime + r.ru_stime
    return busy, own


def _run(cfg: Path, scheduler: str) -> tuple[Any, float, float, float | None]:
    """One batch through the API; (result, whole wall s, partition-phase wall s, CPU seconds
    other processes took meanwhile: how far from quiet the machine was)."""
    from geosvc.batch import run_batch_config
    from geosvc.config import load_config

    stamps: list[float] = []
    cpu0 = _cpu_now()
    t0 = time.perf_counter()
    res = run_batch_config(load_config(cfg), scheduler=scheduler,
                           progress=lambda done, total, r: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    cpu1 = _cpu_now()
    other = (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]) if cpu0 and cpu1 else None
    return res, wall, (stamps[-1] - t0) if stamps else float("nan"), other


def _timed_run(paths: dict[str, Path], root: Path, label: str, rep: int, workers: int,
               threads: int | None) -> tuple[Any, float, float, float | None, Path]:
    """One configuration's batch in its own folder: (result, wall s, partition-phase s,
    other processes' CPU s, output folder)."""
    import shutil

    run_dir = root / f"run-{label.replace(' ', '').replace(',', '-')}-{rep}"
    out = run_dir / "out"
    if out.exists():
        shutil.rmtree(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = _config(paths, out, run_dir)
    old = os.environ.get("GEOSVC_THREADS")
    if threads is not None:
        os.environ["GEOSVC_THREADS"] = str(threads)
    try:
        res, wall, phase, other = _run(cfg, f"local:{workers}")
    finally:
        if threads is not None:
            if old is None:
                os.environ.pop("GEOSVC_THREADS", None)
            else:
                os.environ["GEOSVC_THREADS"] = old
    return res, wall, phase, other, out


def _better(run: tuple[Any, float, float, float | None, Path],
            than: tuple[Any, float, float, float | None, Path]) -> bool:
    """The faster of two quiet runs (other processes took at most QUIET_CPU_S); else the
    one other processes disturbed less (their CPU s)."""
    quiet = [r[3] is not None and r[3] <= QUIET_CPU_S for r in (run, than)]
    if all(quiet):
        return run[1] < than[1]
    if any(quiet):
        return quiet[0]
    return (run[3] or 0.0) < (than[3] or 0.0)


def _workers(records: list[dict[str, Any]]) -> dict[str, float]:
    peak: dict[str, float] = {}
    for r in records:
        pid = str(r.get("pid"))
        peak[pid] = max(peak.get(pid, 0.0), float(r.get("peak_rss_mb", 0.0)))
    return peak


def _same(a: Path, b: Path) -> tuple[bool, str]:
    """Merged households and district tables of two output folders, cell by cell."""
    import geopandas as gpd
    import pandas as pd

    for name, layer in (("households.gpkg", "households"), ("districts.gpkg", "district"),
                        ("districts.gpkg", "stations")):
        x = gpd.read_file(a / name, layer=layer)
        y = gpd.read_file(b / name, layer=layer)
        try:
            pd.testing.assert_frame_equal(pd.DataFrame(x.drop(columns="geometry")),
                                          pd.DataFrame(y.drop(columns="geometry")))
        except AssertionError as exc:
            return False, f"{name}:{layer}: {str(exc).splitlines()[0]}"
        if not x.geometry.geom_equals_exact(y.geometry, tolerance=0.0).all():
            return False, f"{name}:{layer}: geometries differ"
    return True, "households, district table and stations identical (geometry included)"


def _killed_and_resumed(cfg: Path, out: Path, n: int, log: Path) -> dict[str, Any]:
    """Kill ``geosvc batch`` once half the partitions are written; rerun it."""
    env = {**os.environ, "GEOSVC_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "geosvc.cli", "batch", str(cfg)]
    with open(log, "w") as fh:
        child = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        done = 0
        while child.poll() is None:
            done = len(list((out / "partitions").glob("*/partition.json")))
            if done >= n // 2:
                os.killpg(child.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        child.wait()
    at_kill = len(list((out / "partitions").glob("*/partition.json")))
    t0 = time.perf_counter()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    summary = json.loads((out / "summary.json").read_text()) if again.returncode == 0 else {}
    skipped = sum(1 for p in summary.get("partitions", []) if p.get("skipped"))
    return {"finished_at_kill": at_kill, "rerun_exit": again.returncode,
            "rerun_s": round(time.perf_counter() - t0, 1), "rerun_skipped": skipped,
            "rerun_tail": again.stdout.strip().splitlines()[-3:] + again.stderr.strip()
            .splitlines()[-3:]}


def case_province(quick: bool) -> Recorder:
    """The generated province with 1 and 2 local Dask workers, then killed and resumed."""
    rec = Recorder("province", "generated province, geosvc batch on a Dask LocalCluster")
    root = Path(os.environ.get("GEOSVC_PROVINCE_DIR", tempfile.mkdtemp(prefix="geosvc-prov-")))
    root.mkdir(parents=True, exist_ok=True)
    paths = _province(root, quick, rec)
    import pyogrio

    n = int(pyogrio.read_info(paths["districts"])["features"])
    hh = pyogrio.read_dataframe(paths["households"], columns=["households"],
                                read_geometry=False)["households"]
    rec.info["province"] = (f"{n} districts, {int(hh.clip(lower=0).sum()):,} households in "
                            f"{len(hh):,} building rows; siting k = {SITING_K} per district; "
                            "maps on")
    rec.info["load_before"] = os.getloadavg()
    runs: dict[str, tuple[Path, float, float, float | None]] = {}
    kept: dict[str, tuple[Any, float, float, float | None, Path]] = {}
    # (label, workers, numba/GEOS threads per worker: None = the cores' share); every
    # configuration runs REPEATS times, interleaved; the faster quiet run is kept, else the
    # one other processes disturbed least (the same rule for all three)
    configs = (("1 worker", 1, None), ("1 worker, 1 thread", 1, 1), ("2 workers", 2, None))
    for rep in range(REPEATS):
        for label, workers, threads in configs:
            got = _timed_run(paths, root, label, rep, workers, threads)
            rec.info.setdefault(f"runs_{label}", []).append(
                {"wall_s": round(got[1], 2), "partitions_s": round(got[2], 2),
                 "other_cpu_s": None if got[3] is None else round(got[3], 1),
                 "load_after": os.getloadavg()})
            if label not in kept or _better(got, kept[label]):
                kept[label] = got
    for label, workers, threads in configs:
        res, wall, phase, other, out = kept[label]
        peaks = _workers(res.records)
        runs[label] = (out, wall, phase, other)
        share = threads or max(1, (os.cpu_count() or 1) // workers)
        rec.add(f"batch, {label}", "geosvc batch", wall,
                task="whole batch: cluster, partitions, merge, maps", threads=str(workers),
                peak_mb=max(peaks.values()) if peaks else None,
                note=f"{share} numba/GEOS thread(s) per worker; partitions done after "
                     f"{phase:.1f} s, then {wall - phase:.1f} s of merge, maps and writing; "
                     "worker peaks " + ", ".join(f"{v:,.0f} MiB" for v in peaks.values()) +
                     (f"; other processes took {other:.1f} CPU s meanwhile" if other is not None
                      else "") + f" (kept of {REPEATS} runs)")
        rec.add(f"partitions, {label}", "geosvc batch", phase,
                task="partition phase (until the last partition finished)",
                threads=str(workers), peak_mb=max(peaks.values()) if peaks else None)
        rec.info[f"worker_peak_mb_{label}"] = peaks
        rec.info[f"other_cpu_s_{label}"] = None if other is None else round(other, 1)
    rec.compare("whole batch, 1 -> 2 workers", "batch, 2 workers", "batch, 1 worker",
                goal=f">= {SPEEDUP_GOAL}x", min_speedup=SPEEDUP_GOAL)
    noise = max((runs[k][3] or 0.0) for k in ("1 worker", "2 workers"))
    if noise > QUIET_CPU_S:  # a speed-up from a disturbed run is no verdict either way
        rec.comparisons[-1].update(
            met=None, verdict="UNDETERMINED",
            note=f"not a quiet measurement: other processes took up to {noise:.1f} CPU s "
                 "during the kept runs")
    rec.compare("partition phase, 1 -> 2 workers", "partitions, 2 workers",
                "partitions, 1 worker")
    rec.compare("whole batch, 1 worker 1 thread -> 2 workers", "batch, 2 workers",
                "batch, 1 worker, 1 thread")
    rec.compare("partition phase, 1 worker 1 thread -> 2 workers", "partitions, 2 workers",
                "partitions, 1 worker, 1 thread")
    same, how = _same(runs["1 worker"][0], runs["2 workers"][0])
    rec.check("1 and 2 workers give identical merged results", goal="identical", met=same,
              result=how)
    kill_dir = root / "run-killed"
    out = kill_dir / "out"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    kill_dir.mkdir(parents=True, exist_ok=True)
    info = _killed_and_resumed(_config(paths, out, kill_dir), out, n, kill_dir / "cli.log")
    rec.info["killed_run"] = info
    ok = info["rerun_exit"] == 0
    same_k, how_k = _same(runs["2 workers"][0], out) if ok else (False, "rerun failed")
    rec.check("killed half-way, rerun: skips finished partitions, identical results",
              goal="identical, finished partitions skipped",
              met=ok and same_k and info["rerun_skipped"] >= info["finished_at_kill"] > 0,
              result=f"{info['finished_at_kill']} of {n} finished at the kill; rerun skipped "
                     f"{info['rerun_skipped']}, {info['rerun_s']} s; {how_k}")
    rec.notes.append("Measured on a machine shared with other engineers: the load averages "
                     "before and after each run are in info (load_before, load_after_N), and "
                     "the CPU seconds other processes took during each run (other_cpu_s_N: "
                     "busy CPU time of the machine from /proc/stat minus this process's and "
                     "its workers'; near 0 on a quiet machine).")
    return rec
