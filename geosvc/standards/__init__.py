"""Named, versioned planning-standards profiles.

A profile is a TOML data file shipped in ``geosvc/standards/profiles``: every value is a table
``{value = ..., source = "..."}`` so each number carries where it comes from.  Users pick a
profile by name (or a path to their own file) and override any value by its dotted key.

Examples
--------
>>> from geosvc.standards import load_profile
>>> p = load_profile("cn-community-2023", overrides={"categories.elderly_care.speed_m_s": 0.7})
>>> p.category("elderly_care").reach_m
630.0
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from geosvc._errors import ConfigError

__all__ = [
    "Category",
    "Profile",
    "available_profiles",
    "load_profile",
    "DEFAULT_PROFILE",
]

DEFAULT_PROFILE = "cn-community-2023"


@dataclass(frozen=True)
class Category:
    """One service category (e.g. ``elderly_care``) of a profile."""

    name: str
    threshold_min: float
    speed_m_s: float
    radius_m: float
    floor_area_per_100hh_m2: float
    floor_area_per_100hh_old_area_m2: float
    demand_weight: str
    subtypes: tuple[str, ...]
    required_subtypes: tuple[str, ...]
    osm_tags: tuple[tuple[tuple[str, str], ...], ...]
    label_zh: str
    label_en: str

    @property
    def reach_m(self) -> float:
        """Network distance walked in ``threshold_min`` at ``speed_m_s`` (metres)."""
        return round(self.threshold_min * 60.0 * self.speed_m_s, 9)

    def reach_m_at(self, threshold_min: float) -> float:
        """Network distance walked in ``threshold_min`` minutes at this category's speed."""
        return round(float(threshold_min) * 60.0 * self.speed_m_s, 9)


@dataclass(frozen=True)
class Profile:
    """A loaded standards profile: values, their sources and the overrides applied."""

    name: str
    version: str
    values: Mapping[str, Any]
    sources: Mapping[str, str]
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_snap_m(self) -> float:
        """Maximum off-network access leg (metres) before a point is ``off_network``."""
        return float(self.values["network.max_snap_m"])

    @property
    def access_tolerance_m(self) -> float:
        """Off-network leg drawn around service-circle polygons (metres)."""
        return float(self.values["network.access_tolerance_m"])

    @property
    def category_names(self) -> tuple[str, ...]:
        """Names of the service categories, in file order."""
        names = [k.split(".")[1] for k in self.values if k.startswith("categories.")]
        return tuple(dict.fromkeys(names))

    def category(self, name: str) -> Category:
        """Return one category; unknown names raise :class:`ConfigError` listing valid ones."""
        if name not in self.category_names:
            raise ConfigError(
                f"unknown category {name!r} in profile {self.name!r}; "
                f"valid categories: {', '.join(self.category_names)}"
            )
        v = {k.split(".", 2)[2]: val for k, val in self.values.items()
             if k.startswith(f"categories.{name}.")}
        return Category(
            name=name,
            threshold_min=float(v["threshold_min"]),
            speed_m_s=float(v["speed_m_s"]),
            radius_m=float(v["radius_m"]),
            floor_area_per_100hh_m2=float(v["floor_area_per_100hh_m2"]),
            floor_area_per_100hh_old_area_m2=float(v["floor_area_per_100hh_old_area_m2"]),
            demand_weight=str(v["demand_weight"]),
            subtypes=tuple(v["subtypes"]),
            required_subtypes=tuple(v["required_subtypes"]),
            osm_tags=tuple(tuple((str(k), str(val)) for k, val in rule)
                           for rule in v["osm_tags"]),
            label_zh=str(v["label_zh"]),
            label_en=str(v["label_en"]),
        )

    def subtype_radius_m(self, subtype: str, default: float) -> float:
        """GB 50180 per-facility service radius of ``subtype`` (``default`` when none)."""
        return float(self.values.get(f"subtype_radius_m.{subtype}", default))

    def subtype_label_zh(self, subtype: str) -> str:
        """Chinese label of a facility subtype (the key itself when unknown)."""
        return str(self.values.get(f"subtype_labels_zh.{subtype}", subtype))

    def level_walk_m(self, level: str) -> float:
        """Walking distance of a GB 50180 life-circle level (``min5``, ``min10``, ``min15``)."""
        return float(self.values[f"levels.{level}.walk_m"])

    def to_dict(self) -> dict[str, Any]:
        """Values, sources and overrides as plain JSON-ready data (for ``summary.json``)."""
        return {
            "name": self.name,
            "version": self.version,
            "values": {k: v for k, v in self.values.items()},
            "overrides": dict(self.overrides),
            "sources": dict(self.sources),
        }


def available_profiles() -> list[str]:
    """Names of the profiles shipped with geosvc."""
    folder = resources.files("geosvc.standards").joinpath("profiles")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in tree.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and "value" in item:
            out[path] = item
        elif isinstance(item, Mapping):
            out.update(_flatten(item, path + "."))
    return out


def _read_profile_file(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text, where = path.read_bytes(), str(path)
    else:
        name = str(name_or_path)
        if name not in available_profiles():
            raise ConfigError(
                f"unknown standards profile {name!r}; shipped profiles: "
                f"{', '.join(available_profiles())} (or give the path of a .toml profile file)"
            )
        res = resources.files("geosvc.standards").joinpath("profiles", f"{name}.toml")
        text, where = res.read_bytes(), f"profile {name}"
    try:
        return tomllib.loads(text.decode("utf-8")), where
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc}); fix the file syntax") from exc


def _coerce_override(key: str, old: Any, new: Any) -> Any:
    if isinstance(old, bool) or isinstance(old, str):
        if type(new) is not type(old):
            raise ConfigError(f"override {key}={new!r}: expected {type(old).__name__}")
        return new
    if isinstance(old, int | float):
        if isinstance(new, bool) or not isinstance(new, int | float):
            raise ConfigError(f"override {key}={new!r}: expected a number")
        if new <= 0 and not key.endswith("tolerance_m"):
            raise ConfigError(f"override {key}={new!r}: must be > 0")
        if new < 0:
            raise ConfigError(f"override {key}={new!r}: must be >= 0")
        return float(new)
    if isinstance(old, list):
        if not isinstance(new, list | tuple):
            raise ConfigError(f"override {key}={new!r}: expected a list")
        return list(new)
    return new


def load_profile(
    name: str | Path = DEFAULT_PROFILE, *, overrides: Mapping[str, Any] | None = None
) -> Profile:
    """Load a standards profile by name (or ``.toml`` path) and apply overrides.

    Parameters
    ----------
    name
        A shipped profile name (see :func:`available_profiles`) or a path to a profile file.
    overrides
        Dotted keys to new values, e.g. ``{"categories.elderly_care.threshold_min": 10}``.
        Nested dicts are accepted too (``{"categories": {"elderly_care": {...}}}``).
        A key the profile does not define raises :class:`ConfigError` naming close keys.

    Returns
    -------
    Profile
    """
    raw, where = _read_profile_file(name)
    meta = raw.get("profile", {})
    flat = _flatten({k: v for k, v in raw.items() if k != "profile"})
    values = {k: copy.deepcopy(item["value"]) for k, item in flat.items()}
    sources = {k: str(item.get("source", "")) + (" (check)" if item.get("check") else "")
               for k, item in flat.items()}
    applied: dict[str, Any] = {}
    for key, new in _flatten_overrides(overrides or {}).items():
        if key not in values:
            prefix = key.rsplit(".", 1)[0]
            near = [k for k in values if k.startswith(prefix)] or list(values)[:8]
            raise ConfigError(
                f"unknown profile key {key!r} in overrides for {where}; valid keys include: "
                f"{', '.join(near[:12])}"
            )
        values[key] = _coerce_override(key, values[key], new)
        sources[key] = "user override"
        applied[key] = values[key]
    return Profile(
        name=str(meta.get("name", Path(str(name)).stem)),
        version=str(meta.get("version", "")),
        values=values,
        sources=sources,
        overrides=applied,
    )


def _flatten_overrides(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in tree.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(_flatten_overrides(item, path + "."))
        else:
            out[path] = item
    return out
