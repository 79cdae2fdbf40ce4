"""Safe output writing: every file goes to a temporary name and is renamed when complete.

An interrupted run never leaves a half-written file that looks finished, and rerunning
into the same folder replaces results cleanly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["atomic_path", "write_gpkg", "write_json", "write_csv", "file_sha256", "to_jsonable"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # keep the extension last: drivers such as GDAL's GeoPackage check it
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if s.dtype == object or str(s.dtype).startswith("string"):
            out[col] = s.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                             else str(v))
        elif s.dtype == bool:
            out[col] = s.astype(np.int8)
    return out


def write_gpkg(layers: Mapping[str, gpd.GeoDataFrame], path: str | Path) -> Path:
    """Write several layers into one GeoPackage, atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        for name, gdf in layers.items():
            _gpkg_ready(gdf).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    return final


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
