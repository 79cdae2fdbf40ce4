"""A reduced city end to end through ``geosvc run`` under a resident-memory cap (ISSUE 15).

The generated city (benchmarks.cases) is written as GeoPackages and run in a child process
whose resident memory is watched from outside (psutil, every 20 ms): above the cap the child
is killed, as a cgroup or the kernel's OOM killer would.  The peak is also read back from
``getrusage`` of a launcher that has only this one child, independent of geosvc's own
step records.  Every output must exist and every household row must be accounted for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyogrio
import pytest

from benchmarks.cases import CitySpec, city_case
from benchmarks.city_files import write_city_files

ROOT = Path(__file__).resolve().parents[1]
CAP_MB = 1500  # before the chunked relation (ISSUE 13/15) this city's run peaked at 5.3 GB in siting
SPEC = CitySpec(side=100, n_households=100_000, n_facilities=50, n_candidates=1_000,
                n_clusters=20)

# A launcher with one child: it kills the child above the cap and prints the child's peak.
_LAUNCHER = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    import psutil
    cap = float(sys.argv[1]) * 2**20
    child = subprocess.Popen(sys.argv[2:])
    proc, seen, killed = psutil.Process(child.pid), 0, False
    while child.poll() is None:
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            break
        seen = max(seen, rss)
        if rss > cap:
            child.kill()
            killed = True
            break
        time.sleep(0.02)
    code = child.wait()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(json.dumps({"code": code, "killed": killed, "peak_mb": peak,
                      "sampled_mb": seen / 2**20}))
""")


def _run_capped(args: list[str], cap_mb: float, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(cap_mb), sys.executable, "-m",
                           "geosvc.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["stderr"] = proc.stderr
    return report


@pytest.fixture(scope="module")
def city_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("city")
    files = write_city_files(city_case(SPEC), folder, k=10, memory_limit=f"{CAP_MB}MB")
    report = _run_capped(["run", str(files.config)], CAP_MB, ROOT)
    return files, report


def test_reduced_city_runs_under_the_memory_cap(city_run):
    files, report = city_run
    assert not report["killed"], (f"killed above {CAP_MB} MB (sampled "
                                  f"{report['sampled_mb']:.0f} MB)\n" + report["stderr"][-3000:])
    assert report["code"] == 0, report["stderr"][-3000:]
    assert report["peak_mb"] <= CAP_MB
    out = files.folder / "out"
    for name in ("households.gpkg", "service_circles.gpkg", "siting.gpkg", "siting.csv",
                 "summary.json", "map.html", "report.xlsx"):
        assert (out / name).exists(), name
    assert list(out.glob("*.png"))
    assert (out / "map.html").stat().st_size < 5_000_000


def test_reduced_city_summary_accounts_every_row_and_step(city_run):
    files, report = city_run
    summary = json.loads((files.folder / "out" / "summary.json").read_text(encoding="utf-8"))
    n = SPEC.n_households
    assert pyogrio.read_info(files.folder / "out" / "households.gpkg",
                             layer="households")["features"] == n
    for s in summary["categories"].values():
        assert s["rows_total"] == n
        assert sum(s[f"rows_{k}"] for k in ("covered", "uncovered", "unreachable",
                                            "off_network", "invalid")) == n
    names = [s["name"] for s in summary["steps"]]
    for prefix in ("checking the inputs", "reading street network", "walking-time coverage",
                   "writing households.gpkg", "service-circle polygons", "siting new",
                   "map.html", "figures"):
        assert any(n_.startswith(prefix) for n_ in names), (prefix, names)
    assert summary["run"]["memory_limit_mb"] == pytest.approx(CAP_MB * 1e6 / 2**20, rel=1e-3)
    # geosvc's own peak agrees with the launcher's getrusage within sampling (and never above)
    assert summary["run"]["peak_rss_mb"] <= report["peak_mb"] + 1
    assert summary["run"]["peak_rss_mb"] >= 0.8 * max(s["peak_rss_mb"] for s in summary["steps"])


def test_input_that_cannot_fit_exits_2_with_one_line(city_run, tmp_path):
    files, _ = city_run
    proc = subprocess.run([sys.executable, "-m", "geosvc.cli", "--memory-limit", "200MB", "run",
                           str(files.config)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert line.startswith("geosvc: error: ") and "memory limit 200.0 MB" in line, line
    assert "needs about" in line and "--memory-limit" in line, line
