"""``geosvc demo``: the whole analysis on the embedded default district (or Helsinki).

Coverage for both categories, service circles, a siting plan for each category, the map,
the figures and ``summary.json``, all written to one folder by
:func:`geosvc.pipeline.run_all`; this module only picks the sample and builds the options.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from geosvc import resources
from geosvc._errors import InputError
from geosvc.pipeline import RunOptions, SitingOptions, district_inputs, helsinki_inputs, run_all
from geosvc.standards import load_profile

__all__ = ["run_demo", "demo_options"]

SAMPLES = ("district", "helsinki")


def demo_options(*, out_dir: str | Path = "data/processed/demo", lang: str = "zh",
                 k: int = 10, basemap: str | None = None) -> RunOptions:
    """The demo's options: the default profile, 5/10/15-minute circles, greedy max coverage."""
    return RunOptions(out_dir=Path(out_dir), profile=load_profile(), lang=lang,
                      basemap=basemap, siting=SitingOptions(k=k))


def run_demo(*, out_dir: str | Path = "data/processed/demo", sample: str = "district",
             lang: str = "zh", seed: int = 2023, k: int = 10,
             basemap: str | None = None) -> dict[str, Any]:
    """Run the demo on a bundled sample and write every output; returns the summary."""
    started = time.perf_counter()
    if sample not in SAMPLES:
        raise InputError(f"unknown sample {sample!r}; use 'district' or 'helsinki'")
    options = demo_options(out_dir=out_dir, lang=lang, k=k, basemap=basemap)
    with resources.collect_steps():
        inputs = district_inputs(seed=seed) if sample == "district" else \
            helsinki_inputs(profile=options.profile)
        return run_all(inputs, options, started=started)
