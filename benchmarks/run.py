"""``make bench``: geosvc against the peer libraries, same inputs, same run.

Usage::

    python -m benchmarks.run [--quick] [--only CASE [CASE ...]] [--out benchmarks/results]

Every case runs in its own Python process (clean peak-RSS figures, a crash or a time-out
in one case does not lose the others); the parent collects the results into
``<out>/latest.json`` and the markdown table ``<out>/latest.md`` (rewritten after each case),
and keeps each case's console output in ``<out>/logs/<case>.log``.

Cases (see ISSUES 3, 4, 5 and 8 for the goals):

``district``     the default district: coverage end to end; per category geosvc vs networkx,
                 pandana and the bare scipy search
``nearest``      city-size case: one category query vs networkx, pandana, scipy (floor)
``snap``         city-size case: edge-exact snapping of every household vs osmnx nearest_edges
``pairs``        city-size case: candidates x households within 1,080 m vs networkx per candidate
``circles``      service-area polygons vs the osmnx-example ego-graph method
``siting``       max coverage, set cover, p-median on planar instances vs spopt (PuLP + CBC)
``pmedian``      only the p-median of ``siting`` (200 x 2,000), with its #13 goals
``cover``        only max coverage and set cover of ``siting`` at 500 x 5,000 (the ">= 50x
                 spopt" goal of #13)
``pmedian_large`` (on request) the capped p-median siting runs, greedy, on 2,000 x 200,000
                 random demand points (11.5M pairs), geosvc alone: no peer takes it
``maxcov_city``  max coverage with all candidates on the city-size case (greedy and exact)
``orlib``        OR-Library pmed1-20 (exact optimum reproduced, greedy gap)
``city_run``     the generated city written as GeoPackages, run end to end through
                 ``geosvc run`` and the Python API: every step's time and peak memory
``province``     a generated province (20 joined districts of ~52,000 households) through
                 ``geosvc batch`` with 1 and 2 local Dask workers: speed-up, peak memory per
                 worker, identical results, a killed batch resumed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CASES", "main", "render_markdown"]

CASES = ("district", "nearest", "snap", "pairs", "circles", "siting", "pmedian", "cover",
         "pmedian_large", "maxcov_city", "orlib", "pgrouting", "city_run", "province")
#: ``make bench`` runs these; ``pmedian`` and ``cover`` repeat parts of ``siting`` and, like
#: ``pmedian_large`` (geosvc alone), run only on request.
DEFAULT_CASES = tuple(c for c in CASES if c not in ("pmedian", "cover", "pmedian_large"))
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
TIMEOUT_S = {"quick": 900, "full": 3600}


def _case_fn(name: str) -> Callable[[bool], Any]:
    from benchmarks import (
        suite_city,
        suite_network,
        suite_pgrouting,
        suite_province,
        suite_siting,
    )

    table: dict[str, Callable[[bool], Any]] = {
        "district": suite_network.case_district,
        "nearest": suite_network.case_nearest,
        "snap": suite_network.case_snap,
        "pairs": suite_network.case_pairs,
        "circles": suite_network.case_circles,
        "siting": suite_siting.case_siting,
        "pmedian": suite_siting.case_pmedian,
        "cover": suite_siting.case_cover,
        "pmedian_large": suite_siting.case_pmedian_large,
        "maxcov_city": suite_siting.case_maxcov_city,
        "orlib": suite_siting.case_orlib,
        "pgrouting": suite_pgrouting.case_pgrouting,
        "city_run": suite_city.case_city_run,
        "province": suite_province.case_province,
    }
    return table[name]


# --------------------------------------------------------------------------------------------
# child: run one case, write its JSON
# --------------------------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _run_child(case: str, quick: bool, result: Path) -> int:
    warnings.simplefilter("ignore")
    from benchmarks._harness import rss_mb

    t0 = time.perf_counter()
    rec = _case_fn(case)(quick)
    out = rec.to_dict()
    out["wall_s"] = time.perf_counter() - t0
    out["final_rss_mb"] = rss_mb()
    result.write_text(json.dumps(_clean(out), indent=1))
    return 0


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------
def _machine() -> dict[str, Any]:
    import numba

    libs = {}
    for pkg in ("geosvc", "numpy", "scipy", "numba", "shapely", "networkx", "osmnx", "pandana",
                "spopt", "pulp", "highspy", "psutil"):
        try:
            libs[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            libs[pkg] = "not installed"
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = math.nan
    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "memory_gb": round(mem_gb, 1),
        "numba_threads": numba.get_num_threads(), "load_avg_at_start": os.getloadavg(),
        "versions": libs,
    }


def _run_case(case: str, quick: bool, out: Path) -> dict[str, Any]:
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = logs / f"{case}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", case, "--result", str(result)]
    if quick:
        cmd.append("--quick")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p))
    with open(logs / f"{case}.log", "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env,
                                  timeout=TIMEOUT_S["quick" if quick else "full"], check=False)
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.perf_counter() - t0
    if code == 0 and result.exists():
        data = json.loads(result.read_text())
    else:
        tail = (logs / f"{case}.log").read_text(errors="replace").splitlines()[-15:]
        data = {"case": case, "error": f"exit {code}", "log_tail": tail, "rows": [],
                "comparisons": [], "notes": [], "info": {}}
    data["load_avg_before"] = load
    data["process_wall_s"] = wall
    return data


def _fmt_s(sec: float | None) -> str:
    if sec is None or not math.isfinite(sec):
        return "—"
    if sec >= 100:
        return f"{sec:,.0f} s"
    if sec >= 1:
        return f"{sec:.2f} s"
    if sec >= 0.01:
        return f"{sec * 1e3:.0f} ms"
    return f"{sec * 1e3:.2f} ms"


def _fmt_mb(row: dict[str, Any] | None) -> str:
    if not row or row.get("peak_mb") is None:
        return "—"
    txt = f"{row['peak_mb']:,.0f}"
    if row.get("delta_mb") is not None:
        txt += f" (+{row['delta_mb']:,.0f})"
    return txt


def _cell(text: Any) -> str:
    """A markdown table cell: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ratio(ratio: float | None, lower_bound: bool = False) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "—"
    if lower_bound:
        return f"> {ratio:,.1f}x (peer stopped unfinished)"
    if ratio >= 1:
        return f"{ratio:,.1f}x"
    return f"{ratio:.2f}x (geosvc {1 / ratio:.1f}x slower)"


def _verdict(c: dict[str, Any]) -> str:
    verdict = c.get("verdict")
    if verdict is None and c.get("met") is not None:
        verdict = "MET" if c["met"] else "MISSED"
    return f"**{verdict}**" if verdict else "—"


def render_markdown(report: dict[str, Any]) -> str:
    """The results as markdown: goals first, then every measured row per case."""
    m = report["machine"]
    lines = [
        f"# geosvc benchmarks ({report['mode']})",
        "",
        f"{report['finished']} · {m['cpu_count']} CPUs, {m['memory_gb']} GB · Python "
        f"{m['python']} · numba threads {m['numba_threads']} · total {report['total_s'] / 60:.1f}"
        " min (sum of the case processes)"
        + (f"; re-run and merged: {', '.join(report['merged'])}" if report.get("merged") else "")
        + ". The CPU was shared with other work: timings are noisy, ratios matter more than "
        "seconds. Peak memory is the process's peak RSS during the step in MB (+ growth over the "
        "step's start, i.e. without the inputs already loaded).",
        "",
        "## Goals",
        "",
        "| case | task | geosvc | peer | peer time | peer / geosvc | exactness | goal | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        rows = {r["key"]: r for r in case.get("rows", [])}
        if case.get("error"):
            lines.append(f"| {case['case']} | — | — | — | — | — | — | — | failed: {case['error']} |")
            continue
        for c in case["comparisons"]:
            ours = rows.get(c["ours"]) if c.get("ours") else None
            peer = rows.get(c["peer"]) if c.get("peer") else None
            g_txt = (f"{_fmt_s(c['geosvc_s'])}, {_fmt_mb(ours)} MB" if ours else
                     c.get("result", "—"))
            if ours and c.get("result"):
                g_txt = c["result"]
            p_txt = peer["impl"] if peer else "—"
            pt = f"{_fmt_s(c['peer_s'])}, {_fmt_mb(peer)} MB" if peer else "—"
            cells = [case["case"], c["task"], g_txt, p_txt, pt,
                     _ratio(c.get("ratio"), bool(c.get("ratio_is_lower_bound"))),
                     c.get("exactness") or "—", c.get("goal") or "report only", _verdict(c)]
            lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    lines += ["", "## Missed or undetermined goals", ""]
    listed = 0
    for case in report["cases"]:
        for c in case.get("comparisons", []):
            verdict = _verdict(c)
            if verdict not in ("**MISSED**", "**UNDETERMINED**"):
                continue
            listed += 1
            what = (_ratio(c["ratio"], bool(c.get("ratio_is_lower_bound")))
                    if c.get("ratio") is not None else c.get("result", ""))
            lines.append(f"- {verdict} {case['case']}: {c['task']} — goal {c['goal']}; {what}"
                         + (f" ({c['note']})" if c.get("note") else ""))
    if not listed:
        lines.append("- none")
    failed = [case["case"] for case in report["cases"] if case.get("error")]
    if failed:
        lines.append(f"- cases that failed to run: {', '.join(failed)} (see logs/)")
    lines += ["", "## All measurements", ""]
    for case in report["cases"]:
        lines += [f"### {case['case']} — {case.get('instance', '')}", ""]
        if case.get("error"):
            lines += [f"Failed ({case['error']}); last log lines:", "", "```",
                      *case.get("log_tail", []), "```", ""]
            continue
        desc = case.get("info", {}).get("city") or case.get("info", {}).get("district")
        if desc:
            lines += ["Instance: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                               for k, v in desc.items()), ""]
        if case.get("rows"):
            lines += ["| task | implementation | threads | time | peak MB | runs | note |",
                      "|---|---|---|---|---|---|---|"]
            for r in case["rows"]:
                note = r.get("note", "")
                if r.get("objective") is not None:
                    note = (note + "; " if note else "") + f"objective {r['objective']:,.6g}"
                if r.get("gap") is not None:
                    note += f", proven gap {r['gap']:.2%}"
                if r.get("status") and "status" not in note:
                    note += f", status {r['status']}"
                cells = [r["task"], r["impl"], r["threads"], _fmt_s(r["seconds"]), _fmt_mb(r),
                         r.get("runs", 1), note]
                lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
            lines.append("")
        for n in case.get("notes", []):
            lines.append(f"- {n}")
        if case.get("case") == "orlib" and case.get("info", {}).get("instances"):
            lines += ["", "| instance | n | p | optimum | exact | time | greedy | greedy gap |",
                      "|---|---|---|---|---|---|---|---|"]
            for r in case["info"]["instances"]:
                lines.append(f"| {r['instance']} | {r['n']} | {r['p']} | {r['optimum']} | "
                             f"{r['exact']:.0f}{'' if r['reproduced'] else ' ✗'} | "
                             f"{_fmt_s(r['exact_s'])} | {r['greedy']:.0f} | "
                             f"{r['greedy_gap_to_optimum']:.2%} |")
        lines.append(f"\nCase process: {case.get('process_wall_s', 0):.0f} s wall, load "
                     f"average before {case.get('load_avg_before', 0):.1f}.\n")
    return "\n".join(lines) + "\n"


def _write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "latest.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out / "latest.json")
    tmp = out / "latest.md.tmp"
    tmp.write_text(render_markdown(report))
    tmp.replace(out / "latest.md")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.run``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    ap.add_argument("--only", nargs="+", choices=CASES, metavar="CASE",
                    help=f"run only these cases ({', '.join(CASES)})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other cases of an existing <out>/latest.json of the same "
                         "mode (re-run a few cases)")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite <out>/latest.md from <out>/latest.json")
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _run_child(args.child, args.quick, args.result)
    cases = args.only or list(DEFAULT_CASES)
    out: Path = args.out
    mode = "quick" if args.quick else "full"
    if args.render:
        report = json.loads((out / "latest.json").read_text())
        _write(report, out)
        print(render_markdown(report))
        return 0
    report: dict[str, Any] = {
        "mode": mode, "machine": _machine(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "cases": [],
    }
    kept: dict[str, Any] = {}
    if args.merge and (out / "latest.json").exists():
        old = json.loads((out / "latest.json").read_text())
        if old.get("mode") == mode:
            kept = {c["case"]: c for c in old.get("cases", [])}
            report["started"] = old.get("started", report["started"])
            report["merged"] = sorted(set(cases))
    for case in cases:
        print(f"[bench] {case} ...", flush=True)
        kept[case] = _run_case(case, args.quick, out)
        report["cases"] = [kept[c] for c in CASES if c in kept]
        report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        report["total_s"] = sum(c.get("process_wall_s", 0.0) for c in report["cases"])
        _write(report, out)
        data = kept[case]
        status = data.get("error") or f"{data.get('process_wall_s', 0):.0f} s"
        print(f"[bench] {case}: {status}", flush=True)
    print(render_markdown(report))
    print(f"[bench] results in {out / 'latest.json'} and {out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
