"""Safe output writing: every file goes to a temporary name and is renamed when complete.

An interrupted run never leaves a half-written file that looks finished, and rerunning
into the same folder replaces results cleanly:

* :func:`output_run` checks the folder before any work (not a file, writable, disk space),
  removes the temporaries of dead processes, removes the files the previous run listed in
  its manifest (``.geosvc-manifest.json``; never anything else) right before the first new
  file is written (a rerun stopped by bad input keeps them) or refuses with
  ``overwrite=False``, and writes the new run's manifest at the end;
* :func:`install_signal_cleanup` makes SIGTERM and SIGINT remove the temporaries in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from types import FrameType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import CRSError, InputError

__all__ = ["read_layer", "atomic_path", "write_gpkg", "write_json", "write_csv", "file_sha256", "to_jsonable",
           "MANIFEST", "OutputRun", "output_run", "check_output_folder",
           "remove_stale_temporaries", "install_signal_cleanup"]

MANIFEST = ".geosvc-manifest.json"
"""Name of the file listing the outputs of the last run in a folder."""
MIN_FREE_MB = 50.0
"""Free disk space an output folder needs before a run starts."""
_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)(\.[^/]*)?$")
_LIVE_TMP: set[Path] = set()


@dataclass
class OutputRun:
    """The output folder of one run and the files written into it."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)

    def owns(self, path: Path) -> bool:
        """True when ``path`` is directly inside this run's folder."""
        return Path(path).resolve().parent == self.folder.resolve()

    def clear_earlier(self) -> None:
        """Remove the earlier run's listed files, once, right before the first write.

        Deferred until then so that a rerun stopped by bad input keeps the earlier results.
        """
        for name in self.earlier:
            p = self.folder / name
            if p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    self.removed.append(name)
        self.earlier = []
        (self.folder / MANIFEST).unlink(missing_ok=True)

    def register(self, path: Path) -> None:
        """Record a finished output file (called by :func:`atomic_path`)."""
        p = Path(path).resolve()
        if p.parent == self.folder.resolve() and p not in self.written:
            self.written.append(p)


_RUNS: list[OutputRun] = []


def check_output_folder(folder: str | Path, *, option: str = "--out",
                        min_free_mb: float = MIN_FREE_MB) -> Path:
    """Preflight of an output folder: an error naming ``option`` when it cannot be used.

    The folder may not exist yet (its nearest existing parent must then be a writable
    folder).  Checks: not an existing file, writable, at least ``min_free_mb`` free.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} '{out}': is an existing file, not a folder; give a folder "
                         "path (it is created when missing)")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"{option} '{out}': '{probe}' is a file, so the folder cannot be "
                         "created; give another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{option} '{out}': '{probe}' is not writable; choose a folder you "
                         "can write to or fix its permissions")
    free_mb = shutil.disk_usage(probe).free / 1e6
    if free_mb < min_free_mb:
        raise InputError(f"{option} '{out}': only {free_mb:.0f} MB free on its disk; a run "
                         f"needs at least {min_free_mb:.0f} MB; free space or choose another "
                         "folder")
    return out


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[str]:
    """Remove ``.<name>.tmp-<pid>.<ext>`` files of processes that no longer run."""
    out = Path(folder)
    removed: list[str] = []
    if not out.is_dir():
        return removed
    for p in out.iterdir():
        m = _TMP_RE.match(p.name)
        if m and p.is_file() and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p.name)
    return removed


def _read_manifest(out: Path) -> list[str]:
    mf = out / MANIFEST
    if not mf.is_file():
        return []
    try:
        files = json.loads(mf.read_text(encoding="utf-8")).get("files", [])
    except (ValueError, OSError, AttributeError):
        return []
    # only plain names of files directly inside the folder: never anything else
    return [f for f in files if isinstance(f, str) and f and Path(f).name == f
            and f not in (".", "..", MANIFEST)]


@contextlib.contextmanager
def output_run(folder: str | Path, *, overwrite: bool = True, option: str = "--out",
               command: str = "") -> Iterator[OutputRun]:
    """Own an output folder for one run (see the module notes).

    Parameters
    ----------
    folder
        Output folder (created when missing).
    overwrite
        ``False`` refuses a folder that holds an earlier run's outputs.
    option
        Option or config key naming the folder, for messages.
    command
        Recorded in the manifest.
    """
    out = check_output_folder(folder, option=option)
    old = _read_manifest(out)
    if old and not overwrite:
        raise InputError(f"{option} '{out}': holds the {len(old)} output files of an earlier run "
                         f"(listed in {MANIFEST}); choose another folder or drop --no-overwrite "
                         "(config: output.overwrite = true)")
    out.mkdir(parents=True, exist_ok=True)
    run = OutputRun(out, earlier=old)
    run.removed.extend(remove_stale_temporaries(out))
    _RUNS.append(run)
    complete = False
    try:
        yield run
        complete = True
    finally:
        _RUNS.remove(run)
        _write_manifest(run, complete=complete, command=command)


def _write_manifest(run: OutputRun, *, complete: bool, command: str) -> None:
    if run.earlier:  # nothing was written: the earlier run's files and manifest stay
        return
    files = sorted(p.name for p in run.written if p.exists())
    if not files and not complete:
        return
    data = {"files": files, "complete": complete, "command": command,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid()}
    with contextlib.suppress(OSError):
        (run.folder / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=2),
                                           encoding="utf-8")


def _remove_live_temporaries() -> None:
    for p in list(_LIVE_TMP):
        with contextlib.suppress(OSError):
            for side in p.parent.glob(glob_escape(p.name) + "*"):  # GDAL's -journal/-wal too
                side.unlink()
        _LIVE_TMP.discard(p)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _remove_live_temporaries()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    sys.exit(128 + signum)


def install_signal_cleanup() -> None:
    """SIGTERM and SIGINT remove the temporary files in flight, then stop the run.

    SIGINT raises :class:`KeyboardInterrupt`, SIGTERM exits with 128 + 15.  Call from the
    main thread of a command-line program (the CLI does); a library never installs it.
    """
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # keep the extension last: drivers such as GDAL's GeoPackage check it
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    if tmp.exists():
        tmp.unlink()
    for run in _RUNS:
        if run.owns(final):
            run.clear_earlier()
    _LIVE_TMP.add(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
        for run in _RUNS:
            run.register(final)
    finally:
        _LIVE_TMP.discard(tmp)
        if tmp.exists():
            tmp.unlink()


def _text(s: pd.Series) -> pd.Series:
    """Values as text, missing (None/NaN) kept missing."""
    missing = s.isna().to_numpy()
    out = np.full(len(s), None, dtype=object)
    if (~missing).any():
        out[~missing] = s.to_numpy(dtype=object)[~missing].astype(str)
    return pd.Series(out, index=s.index, name=s.name)


def _gpkg_column(s: pd.Series) -> pd.Series:
    """One column in a form GDAL's Arrow writer takes as is (vectorised, no row loop).

    Booleans become 0/1 integers; categoricals keep their dictionary (text categories);
    object columns that are already text pass through, mixed objects become text.
    """
    if s.dtype == bool:
        return s.astype(np.int8)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if pd.api.types.infer_dtype(cats, skipna=True) != "string":
            s = s.cat.rename_categories([str(c) for c in cats])
        return s
    if s.dtype == object:
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind in ("string", "empty"):
            return s.where(s.notna(), None)
        if kind in ("integer", "floating", "mixed-integer-float", "boolean"):
            return s
        return _text(s)
    return s


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geom = gdf.geometry.name
    cols = {c: (gdf[c] if c == geom else _gpkg_column(gdf[c])) for c in gdf.columns}
    return gpd.GeoDataFrame(cols, geometry=geom, crs=gdf.crs, index=gdf.index)


def write_gpkg(layers: Mapping[str, gpd.GeoDataFrame], path: str | Path, *,
               spatial_index: bool = True) -> Path:
    """Write several layers into one GeoPackage, atomically, through GDAL's Arrow path.

    Columns go to GDAL as Arrow arrays (no per-row Python work): numbers as numbers,
    booleans as 0/1, categoricals as text.  ``spatial_index=False`` skips the R-tree
    (about a third of the time for a million points; GIS viewers then scan the table).
    """
    import pyogrio

    final = Path(path)
    options = None if spatial_index else {"SPATIAL_INDEX": "NO"}
    with atomic_path(final) as tmp:
        for name, gdf in layers.items():
            rows = _rows_per_batch(gdf)
            for start in range(0, max(len(gdf), 1), rows):
                part = _gpkg_ready(gdf.iloc[start:start + rows])
                pyogrio.write_dataframe(part, tmp, layer=name, driver="GPKG", use_arrow=True,
                                        layer_options=options, append=start > 0)
    return final


def _rows_per_batch(gdf: gpd.GeoDataFrame) -> int:
    """Rows per write so that the Arrow copy (about twice the columns) fits the budget."""
    from geosvc import resources

    n = len(gdf)
    if n == 0:
        return 1
    per_row = gdf.memory_usage(index=False, deep=False).sum() / n + 120  # + WKB, text
    return int(max(10_000, min(n, resources.available_bytes(share=0.5) / (2 * per_row))))


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data from numpy/pandas values (NaN and inf become null)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON (UTF-8, Chinese kept readable), atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2),
                       encoding="utf-8")
    return final


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV (UTF-8 with BOM so spreadsheet programs show Chinese), atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")
    return final


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Reading input layers (households, facilities, candidates, compounds, areas)
# ---------------------------------------------------------------------------

_DEFAULT_LAYERS = {"households": ("households", "buildings", "residential"),
                   "facilities": ("facilities",), "candidates": ("candidates",),
                   "compounds": ("compounds",)}



def _option(what: str, key: str) -> str:
    """The CLI option and config key that set ``key`` for input ``what`` (for messages)."""
    if what == "areas":
        return f"the areas spec (config: inputs.areas[].{key})"
    return f"--{what}-{key} (config: inputs.{what}_{key})"


def _pick_layer(p: Path, layer: str | None, what: str,
                defaults: Sequence[str] | None = None) -> str | None:
    import pyogrio

    try:
        listed = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
        # QGIS (and geosvc's own outputs) keep layer styles in a table GDAL lists too
        names = [n for n in listed if n != "layer_styles"]
    except Exception as exc:
        raise InputError(f"{p}: cannot read the {what} file ({exc}); is it a GeoPackage, "
                         "Shapefile, GeoJSON, CSV or .xlsx file?") from None
    if layer is not None:
        if layer not in names:
            raise InputError(f"{p}: no layer {layer!r}; layers are {names}; fix "
                             f"{_option(what, 'layer')}")
        return layer
    if len(names) <= 1:
        return names[0] if len(listed) > len(names) and names else None
    for name in defaults or _DEFAULT_LAYERS.get(what, (what,)):
        if name in names:
            return name
    raise InputError(f"{p} holds {len(names)} layers {names}; name the {what} layer with "
                     f"{_option(what, 'layer')}")


def _set_crs(gdf: gpd.GeoDataFrame, crs: Any, p: Path, what: str) -> gpd.GeoDataFrame:
    from geosvc.tables import parse_crs

    if crs is None:
        if gdf.crs is None:
            raise CRSError(f"{p}: the {what} layer has no CRS; set it in the file or give it "
                           f"with {_option(what, 'crs')} (e.g. EPSG:4326)")
        return gdf
    want = parse_crs(crs, option=_option(what, "crs"))
    if gdf.crs is None:
        return gdf.set_crs(want)
    if not gdf.crs.equals(want):
        raise CRSError(f"{p}: the {what} layer says its CRS is {gdf.crs.to_string()} but "
                       f"{_option(what, 'crs')} says {want.to_string()}; drop the option or fix "
                       "the file")
    return gdf


def _check_lonlat(gdf: gpd.GeoDataFrame, p: Path | str, what: str) -> None:
    """Error when (nearly) every row is outside the lon/lat range and swapped would fit."""
    if gdf.crs is None or not gdf.crs.is_geographic or len(gdf) == 0:
        return
    b = shapely.bounds(gdf.geometry.to_numpy())
    ok = np.isfinite(b).all(axis=1)
    if not ok.any():
        return
    b = b[ok]
    out = (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
    if out.mean() <= 0.5:
        return  # a few rows: each becomes invalid with its reason
    swapped_fits: np.ndarray = np.asarray((np.abs(b[:, [1, 3]]) <= 180).all(axis=1)
                                          & (np.abs(b[:, [0, 2]]) <= 90).all(axis=1))
    row = int(np.flatnonzero(ok)[np.flatnonzero(out)[0]])
    ex = f"row {row}: x={b[out][0, 0]:g}, y={b[out][0, 1]:g}"
    hint = ("are lon/lat swapped? Put longitude first (x) and latitude second (y)"
            if swapped_fits[out].mean() > 0.9 else
            f"give the layer's real CRS with {_option(what, 'crs')}")
    raise InputError(f"{p}: {int(out.sum())} of {len(b)} {what} rows lie outside the lon/lat "
                     f"range of {gdf.crs.to_string()} ({ex}); {hint}")


def read_layer(path: str | Path, *, layer: str | None = None, coord_system: str = "wgs84",
                what: str = "points", crs: Any = None, xy: Sequence[str] | None = None,
                default_layers: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer or a CSV/Excel table of ``what`` (every row kept).

    Parameters
    ----------
    path
        GeoPackage/Shapefile/GeoJSON, or ``.csv``/``.xlsx``.
    layer
        Layer of a multi-layer file, or Excel sheet.  A file with several layers and no
        layer named is read from the layer called ``what`` (households: also
        ``buildings``), else it is an error listing the layers.
    coord_system
        Datum of lon/lat coordinates: ``wgs84``, ``gcj02`` or ``bd09``.
    what
        ``households``, ``facilities``, ``candidates``, ``compounds``, ``areas``: used in
        messages and option names.
    crs
        CRS of a table's coordinates, or of a layer that carries none.
    xy
        Coordinate column names of a table (default: detected).
    default_layers
        Layer names tried, in order, when a multi-layer file is read without ``layer``.

    Returns
    -------
    geopandas.GeoDataFrame
        The rows with their CRS (EPSG:4326 after a ``gcj02``/``bd09`` conversion).
    """
    from geosvc._uri import is_db_uri, mask_uri

    if is_db_uri(path):
        from geosvc.postgis import read_postgis_layer

        where: Path | str = mask_uri(str(path))
        gdf = read_postgis_layer(str(path))
    else:
        where = Path(path)
        gdf = _read_file_points(where, layer=layer, what=what, crs=crs, xy=xy,
                                default_layers=default_layers)
    _check_lonlat(gdf, where, what)
    if coord_system != "wgs84":
        from geosvc.crs import to_wgs84_frame

        gdf = to_wgs84_frame(gdf, coord_system=coord_system)
    gdf.attrs["source"] = str(where)
    return gdf


def _read_file_points(p: Path, *, layer: str | None, what: str, crs: Any,
                      xy: Sequence[str] | None, default_layers: Sequence[str] | None
                      ) -> gpd.GeoDataFrame:
    """The rows of a vector file or a CSV/Excel table, with their CRS."""
    from geosvc.tables import is_table, read_table

    if not p.exists():
        raise InputError(f"{p}: {what} file not found; check the path")
    if p.is_dir() and p.suffix.lower() != ".gdb":
        raise InputError(f"{p}: is a folder, not a {what} file")
    if is_table(p):
        return read_table(p, what=what, xy=xy, crs=crs, sheet=layer,
                          option=_option(what, "xy"), crs_option=_option(what, "crs"))
    if p.suffix.lower() in (".xls",):
        raise InputError(f"{p}: old Excel .xls is not read; save it as .xlsx or .csv")
    use = _pick_layer(p, layer, what, default_layers)
    try:
        gdf = gpd.read_file(p, layer=use, engine="pyogrio")
    except Exception as exc:
        raise InputError(f"{p}: cannot read the {what} layer"
                         + (f" {use!r}" if use else "") + f" ({exc})") from exc
    return _set_crs(gdf, crs, p, what)
