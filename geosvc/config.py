"""Batch configuration (``geosvc run CONFIG.toml``): validated before any work starts.

Relative paths are resolved against the config file's folder.  Every error names the key,
the bad value and what is allowed, as one line.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from geosvc._errors import ConfigError, InputError

if TYPE_CHECKING:
    from geosvc.pipeline import Inputs, RunOptions
    from geosvc.standards import Profile

__all__ = ["Config", "load_config", "run_config", "run_options", "config_inputs"]

CoordSystem = Literal["wgs84", "gcj02", "bd09"]


def _path_or_uri(value: Any) -> Any:
    """Keep a ``postgresql://`` URI as text; anything else is a file path."""
    from geosvc.postgis import is_db_uri

    if isinstance(value, str) and not is_db_uri(value):
        return Path(value)
    return value


#: A file path, or a PostGIS URI (``postgresql://…?table=…``; output: ``?schema=…``).
Location = Annotated[Path | str, BeforeValidator(_path_or_uri)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AreaSpec(_Strict):
    """One area layer (communities, streets, ...)."""

    level: str
    path: Location
    layer: str | None = None
    id: str = "area_id"
    name: str | None = "name"
    coord_system: CoordSystem = "wgs84"


class HouseholdColumns(_Strict):
    """Column names of the household layer."""

    id: str | None = None
    households: str | None = "households"
    persons: str | None = "persons"
    elderly: str | None = "elderly"


class FacilityColumns(_Strict):
    """Column names of the facility layer."""

    id: str = "facility_id"
    category: str = "category"
    subtype: str = "subtype"
    floor_area: str = "floor_area_m2"


InputName = Literal["roads", "households", "facilities", "compounds", "areas"]


class InputsSpec(_Strict):
    """Input files, or a bundled sample."""

    sample: Literal["district", "helsinki"] | None = None
    seed: int = 2023
    roads: Location | None = None
    roads_layer: str | None = None
    households: Location | None = None
    households_layer: str | None = None
    facilities: Location | None = None
    facilities_layer: str | None = None
    compounds: Location | None = None
    compounds_layer: str | None = None
    crs: str | None = None
    coord_system: CoordSystem | dict[InputName, CoordSystem] = "wgs84"
    households_crs: str | None = None
    facilities_crs: str | None = None
    compounds_crs: str | None = None
    households_xy: list[str] | None = Field(default=None, min_length=2, max_length=2)
    facilities_xy: list[str] | None = Field(default=None, min_length=2, max_length=2)
    connectivity: Literal["endpoints", "crossings", "auto"] = "auto"
    components: Literal["all", "largest"] = "all"
    min_component_nodes: int = Field(default=20, ge=1)
    households_columns: HouseholdColumns = Field(default_factory=HouseholdColumns)
    one_household_per_point: bool = False
    facilities_columns: FacilityColumns = Field(default_factory=FacilityColumns)
    areas: list[AreaSpec] = Field(default_factory=list)

    def coord_systems(self) -> dict[str, str]:
        """Datum per input (a single ``coord_system`` applies to every input)."""
        names = ("roads", "households", "facilities", "compounds", "areas")
        if isinstance(self.coord_system, str):
            return {k: self.coord_system for k in names}
        return {k: self.coord_system.get(k, "wgs84") for k in names}  # type: ignore[call-overload]


class ProfileSpec(_Strict):
    """Standards profile and overrides (dotted keys)."""

    name: str = "cn-community-2023"
    overrides: dict[str, Any] = Field(default_factory=dict)


class AnalysisSpec(_Strict):
    """What to compute."""

    categories: list[str] | None = None
    thresholds_min: list[float] = Field(default_factory=lambda: [5.0, 10.0, 15.0])
    radius_method: Literal["profile", "gb50180"] = "profile"

    @field_validator("thresholds_min")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if not v or any(t <= 0 for t in v):
            raise ValueError("thresholds must be positive minutes, e.g. [5, 10, 15]")
        return v


class SitingSpec(_Strict):
    """Siting model and its options."""

    model: Literal["max-coverage", "set-cover", "p-median", "capacitated"] = "max-coverage"
    k: int = Field(default=10, ge=1, le=1000)
    target: float = Field(default=0.95, gt=0.0, le=1.0)
    solver: Literal["greedy", "exact"] = "greedy"
    candidates: Path | None = None
    candidates_layer: str | None = None
    candidates_id: str | None = None
    candidates_only: bool = False
    capacity_column: str | None = None

    def propose_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`geosvc.siting.propose_sites` (candidates)."""
        return {"candidates_path": self.candidates, "candidates_layer": self.candidates_layer,
                "candidates_id": self.candidates_id, "candidates_only": self.candidates_only,
                "capacity_column": self.capacity_column}


class OutputSpec(_Strict):
    """Where and how results are written."""

    folder: Location
    lang: Literal["zh", "en"] = "zh"
    basemap: str | None = None
    overwrite: bool = True

    @field_validator("basemap")
    @classmethod
    def _basemap(cls, v: str | None) -> str | None:
        from geosvc.viz import BASEMAPS, is_tile_url

        if v is None or v in ("none", *BASEMAPS) or is_tile_url(v):
            return None if v == "none" else v
        raise ValueError(f"use 'none', {', '.join(map(repr, BASEMAPS))} or a tile URL with "
                         "{z}, {x} and {y}")


class RunSpec(_Strict):
    """How the run uses the machine."""

    memory_limit: str | None = None

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None:
            from geosvc.resources import parse_memory

            try:
                parse_memory(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v


class BatchSection(_Strict):
    """Many study areas in one run (``geosvc batch``; see the README "Many districts")."""

    districts: Path
    districts_layer: str | None = None
    id: str = "district_id"
    name: str | None = "name"
    halo_m: float | None = Field(default=None, gt=0.0)
    scheduler: str = "local"
    #: siting plans: ``off``, ``district`` ([siting] k stations per district) or
    #: ``province`` ([siting] k stations in all, allocated across districts)
    siting: Literal["off", "district", "province"] = "off"
    #: per-district ``map.html`` and the province map ``province.html``
    maps: bool = True


class Config(_Strict):
    """A whole batch configuration."""

    inputs: InputsSpec
    profile: ProfileSpec = Field(default_factory=ProfileSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    siting: SitingSpec = Field(default_factory=SitingSpec)
    output: OutputSpec
    run: RunSpec = Field(default_factory=RunSpec)
    strict: bool = False
    batch: BatchSection | None = None


def _format_error(path: Path, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    value = err.get("input")
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see examples/district.toml)"
    elif err["type"] == "missing":
        return f"{path}: missing required key {key!r}"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {key} = {value!r}: {msg}{more}"


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; also checks input files exist and names are known."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(p, exc)) from None
    base = p.parent
    cfg = _resolve(cfg, base)
    _check(cfg, p)
    return cfg


def _resolve(cfg: Config, base: Path) -> Config:
    def fix(v: Path | str | None) -> Path | str | None:
        if v is None or isinstance(v, str):  # None, or a database URI
            return v
        return v if v.is_absolute() else base / v

    inp = cfg.inputs.model_copy(update={
        "roads": fix(cfg.inputs.roads), "households": fix(cfg.inputs.households),
        "facilities": fix(cfg.inputs.facilities), "compounds": fix(cfg.inputs.compounds),
        "areas": [a.model_copy(update={"path": fix(a.path)}) for a in cfg.inputs.areas]})
    out = cfg.output.model_copy(update={"folder": fix(cfg.output.folder)})
    batch = None if cfg.batch is None else cfg.batch.model_copy(
        update={"districts": fix(cfg.batch.districts)})
    siting = cfg.siting.model_copy(update={"candidates": fix(cfg.siting.candidates)})
    return cfg.model_copy(update={"inputs": inp, "output": out, "batch": batch,
                                  "siting": siting})


def _check(cfg: Config, where: Path) -> None:
    from geosvc.io import check_output_folder
    from geosvc.standards import load_profile
    from geosvc.tables import parse_crs

    inp = cfg.inputs
    if inp.sample is None:
        for key in ("roads", "households", "facilities"):
            if getattr(inp, key) is None:
                raise ConfigError(f"{where}: inputs.{key} is required (or set inputs.sample = "
                                  "'district' to use the embedded district)")
    files = [("inputs.roads", inp.roads), ("inputs.households", inp.households),
             ("inputs.facilities", inp.facilities), ("inputs.compounds", inp.compounds)]
    files += [(f"inputs.areas[{a.level}].path", a.path) for a in inp.areas]
    if cfg.batch is not None:
        if inp.sample is not None:
            raise ConfigError(f"{where}: [batch] needs province files in [inputs] (roads, "
                              "households, facilities), not inputs.sample")
        files.append(("batch.districts", cfg.batch.districts))
    files += [("siting.candidates", cfg.siting.candidates)]
    if cfg.siting.candidates_only and cfg.siting.candidates is None:
        raise ConfigError(f"{where}: siting.candidates_only = true needs siting.candidates "
                          "(a file of candidate sites)")
    for key, f in files:
        if isinstance(f, Path) and not f.exists():
            raise ConfigError(f"{where}: {key} = '{f}': file not found")
    for key in ("crs", "households_crs", "facilities_crs", "compounds_crs"):
        value = getattr(inp, key)
        if value is not None:
            try:
                parse_crs(value, option=f"inputs.{key}")
            except InputError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    try:
        if isinstance(cfg.output.folder, Path):
            check_output_folder(cfg.output.folder, option="output.folder")
    except InputError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        prof = load_profile(cfg.profile.name, overrides=cfg.profile.overrides)
    except ConfigError as exc:
        raise ConfigError(f"{where}: profile: {exc}") from None
    for c in cfg.analysis.categories or []:
        if c not in prof.category_names:
            raise ConfigError(f"{where}: analysis.categories contains {c!r}; valid categories: "
                              f"{', '.join(prof.category_names)}")


def _input_name(loc: Path | str | None) -> str:
    from geosvc.postgis import mask_uri

    if loc is None:
        return ""
    return loc.name if isinstance(loc, Path) else mask_uri(loc).split("?")[-1]


def run_config(cfg: Config) -> dict[str, Any]:
    """Run everything a validated config asks for; returns the summary.

    ``[run] memory_limit`` applies unless a limit is already open (the CLI's
    ``--memory-limit`` wins).
    """
    from geosvc import resources

    keep_outer = resources.active_limit() is not None
    with resources.memory_limit(None if keep_outer else cfg.run.memory_limit), \
            resources.collect_steps():
        return _run_config(cfg)


def run_options(cfg: Config, profile: Profile) -> RunOptions:
    """The :class:`geosvc.pipeline.RunOptions` a validated config asks for."""
    from geosvc.pipeline import RunOptions, SitingOptions

    st = cfg.siting
    return RunOptions(
        out_dir=Path(cfg.output.folder), profile=profile, lang=cfg.output.lang,
        categories=None if cfg.analysis.categories is None else tuple(cfg.analysis.categories),
        thresholds_min=tuple(cfg.analysis.thresholds_min),
        radius_method=cfg.analysis.radius_method, basemap=cfg.output.basemap,
        siting=SitingOptions(model=st.model, k=st.k, target=st.target, solver=st.solver,
                             **st.propose_options()))


def config_inputs(cfg: Config, profile: Profile) -> Inputs:
    """Read the inputs a validated config names (a bundled sample or files)."""
    from geosvc.inputs import InputSpec, district_inputs, helsinki_inputs, load_inputs

    inp = cfg.inputs
    if inp.sample == "district":
        return district_inputs(seed=inp.seed)
    if inp.sample == "helsinki":
        return helsinki_inputs(profile=profile)
    assert inp.roads and inp.households and inp.facilities
    cols = inp.households_columns
    fcols = inp.facilities_columns
    return load_inputs(InputSpec(
        roads=inp.roads, households=inp.households, facilities=inp.facilities,
        areas={a.level: {"path": a.path, "layer": a.layer, "id": a.id, "name": a.name}
               for a in inp.areas},
        compounds=inp.compounds, crs=inp.crs,
        coord_system=inp.coord_systems(),
        layers={"roads": inp.roads_layer, "households": inp.households_layer,
                "facilities": inp.facilities_layer, "compounds": inp.compounds_layer},
        household_columns={"id_col": cols.id,
                           "households_col": None if inp.one_household_per_point
                           else cols.households,
                           "persons_col": cols.persons, "elderly_col": cols.elderly},
        facility_columns={"id_col": fcols.id, "category_col": fcols.category,
                          "subtype_col": fcols.subtype, "floor_area_col": fcols.floor_area},
        input_crs={"households": inp.households_crs, "facilities": inp.facilities_crs,
                   "compounds": inp.compounds_crs},
        xy={"households": inp.households_xy, "facilities": inp.facilities_xy},
        profile=profile, name=f"config {_input_name(inp.roads)}",
        connectivity=inp.connectivity, components=inp.components,
        min_component_nodes=inp.min_component_nodes))


def _run_config(cfg: Config) -> dict[str, Any]:
    from geosvc.pipeline import run_all
    from geosvc.standards import load_profile

    started = time.perf_counter()
    prof = load_profile(cfg.profile.name, overrides=cfg.profile.overrides)
    return run_all(config_inputs(cfg, prof), run_options(cfg, prof), started=started)
