"""The orchestration layer: one options object, one reader, settings in one place."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geosvc import settings
from geosvc._errors import InputError
from geosvc.config import load_config, run_options
from geosvc.demo import demo_options
from geosvc.io import read_layer
from geosvc.pipeline import RunOptions, SitingOptions
from geosvc.standards import load_profile

ROOT = Path(__file__).resolve().parents[1]


def test_options_are_frozen_and_built_alike_by_config_and_demo(tmp_path: Path) -> None:
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('[inputs]\nsample = "district"\n[siting]\nk = 7\nmodel = "p-median"\n'
                        f'[output]\nfolder = "{tmp_path / "out"}"\nlang = "en"\n'
                        '[analysis]\nthresholds_min = [15]\n', encoding="utf-8")
    prof = load_profile()
    opts = run_options(load_config(cfg_path), prof)
    assert opts == RunOptions(out_dir=tmp_path / "out", profile=prof, lang="en",
                              thresholds_min=(15.0,),
                              siting=SitingOptions(model="p-median", k=7))
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.lang = "zh"  # type: ignore[misc]
    demo = demo_options(out_dir=tmp_path, lang="en", k=7)
    assert demo.siting == SitingOptions(k=7)
    assert demo.thresholds_min == (5.0, 10.0, 15.0) and demo.profile is not None


def test_config_does_not_import_demo() -> None:
    code = "import sys, geosvc.config; sys.exit(int('geosvc.demo' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("what", ["areas", "compounds", "facilities"])
def test_read_layer_names_the_input(tmp_path: Path, what: str) -> None:
    with pytest.raises(InputError, match=f"{what} file not found"):
        read_layer(tmp_path / "nope.gpkg", what=what)
    path = tmp_path / "two.gpkg"
    pts = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(116.4, 39.9)], crs=4326)
    pts.to_file(path, layer="x")
    pts.to_file(path, layer="y")
    with pytest.raises(InputError, match=f"name the {what} layer"):
        read_layer(path, what=what)


def test_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from geosvc.circles._areas import n_workers

    monkeypatch.setenv(settings.THREADS_ENV, "3")
    assert settings.threads() == n_workers() == 3
    monkeypatch.setenv(settings.THREADS_ENV, "many")
    with pytest.raises(InputError, match="GEOSVC_THREADS"):
        settings.threads()
    monkeypatch.delenv(settings.THREADS_ENV)
    assert settings.threads() == settings.cpus() >= 1
