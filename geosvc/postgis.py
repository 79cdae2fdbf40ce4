"""PostGIS in and out: read layers from a database, write a run's tables in one transaction.

A database input is a URI wherever a file is accepted::

    postgresql://user@host:5432/city?table=gis.roads
    postgresql://user@host:5432/city?sql=SELECT id, geom FROM gis.roads WHERE kind='street'&geom=geom

and a database output is a URI given as the output folder::

    postgresql://user@host:5432/city?schema=geosvc_run_2026

Credentials come from the URI or, better, from libpq's own environment (``PGPASSWORD``,
``PGUSER`` …) and ``~/.pgpass``; they are never printed nor written to ``summary.json``
(:func:`mask_uri`).  Table and schema names taken from a URI are always quoted identifiers;
a ``sql=`` query runs in a read-only transaction.

Writing is all or nothing: every table is written under a temporary name inside one
transaction and renamed into place at commit, so a failed or killed run leaves no table
behind.  geosvc marks the tables it creates (a table comment); a rerun replaces the earlier
run's tables, but a table that geosvc did not create is never dropped or replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import pandas as pd

from geosvc._errors import CRSError, InputError
from geosvc._uri import is_db_uri, mask_uri

__all__ = ["is_db_uri", "mask_uri", "DbSource", "parse_db_uri", "read_postgis_layer",
           "write_postgis_tables", "describe_source", "check_db_output", "publish_folder",
           "GEOSVC_MARK"]

log = logging.getLogger(__name__)

#: Table comment that marks a table as created by geosvc (only such tables are replaced).
GEOSVC_MARK = "created by geosvc"
_OWN_KEYS = ("table", "sql", "geom", "schema")


@dataclass(frozen=True)
class DbSource:
    """A parsed database URI: where to connect and what to read or write."""

    uri: str
    connect_url: str
    table: str | None
    sql: str | None
    geom: str | None
    schema: str | None

    @property
    def masked(self) -> str:
        """The URI with the password masked."""
        return mask_uri(self.uri)

    def table_parts(self) -> tuple[str, str]:
        """``(schema, table)`` of ``table=`` (schema ``public`` when not given)."""
        assert self.table is not None
        schema, _, name = self.table.rpartition(".")
        return (schema or "public", name)


def parse_db_uri(uri: str) -> DbSource:
    """Split a geosvc database URI into the connection URL and geosvc's own keys."""
    if not is_db_uri(uri):
        raise InputError(f"{uri!r}: not a PostgreSQL URI; use postgresql://user@host:port/db"
                         "?table=schema.name")
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN_KEYS}
    rest = [(k, v) for k, v in query if k not in _OWN_KEYS]
    connect = urlunsplit(parts._replace(scheme="postgresql+psycopg", query=urlencode(rest)))
    if own.get("table") is not None and own.get("sql") is not None:
        raise InputError(f"{mask_uri(uri)}: give either table= or sql=, not both")
    return DbSource(uri, connect, own.get("table") or None, own.get("sql") or None,
                    own.get("geom") or None, own.get("schema") or None)


def describe_source(src: DbSource, rows: int) -> dict[str, Any]:
    """A record for ``summary.json``: masked URI, table or SQL hash, row count."""
    rec: dict[str, Any] = {"uri": src.masked.split("?", 1)[0], "rows": int(rows)}
    if src.table:
        rec["table"] = src.table
    if src.sql:
        rec["sql_sha256"] = hashlib.sha256(src.sql.encode("utf-8")).hexdigest()
    return rec


def _engine(src: DbSource) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(src.connect_url, pool_pre_ping=False)


def _connect_error(src: DbSource, exc: Exception) -> InputError:
    msg = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    low = msg.lower()
    if "password" in low or "authentication" in low:
        fix = "check the user and password (PGPASSWORD or ~/.pgpass; never put it in a config)"
    elif "does not exist" in low and "database" in low:
        fix = "check the database name in the URI"
    else:
        fix = "check that the server runs and the host and port are right"
    return InputError(f"{src.masked}: cannot connect to PostgreSQL ({msg}); {fix}")


def _quote(conn: Any, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote_identifier(name))


def _geometry_columns(conn: Any, schema: str, table: str) -> list[tuple[str, int]]:
    import sqlalchemy as sa

    rows = conn.execute(sa.text(
        "SELECT f_geometry_column, srid FROM geometry_columns "
        "WHERE f_table_schema = :s AND f_table_name = :t"), {"s": schema, "t": table}).all()
    return [(str(r[0]), int(r[1])) for r in rows]


def _table_exists(conn: Any, schema: str, table: str) -> bool:
    import sqlalchemy as sa

    return bool(conn.execute(sa.text(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = :s AND table_name = :t"),
        {"s": schema, "t": table}).first())


def _crs_of(src: DbSource, srid: int, column: str) -> str:
    if srid <= 0:
        raise CRSError(
            f"{src.masked}: geometry column {column!r} has SRID 0 (no coordinate system); set it "
            f"in the database, e.g. SELECT UpdateGeometrySRID('table', '{column}', 4326)")
    return f"EPSG:{srid}"


def read_postgis_layer(uri: str) -> gpd.GeoDataFrame:
    """Read a table (``table=``) or a query (``sql=``) from PostGIS as a GeoDataFrame.

    Raises
    ------
    InputError
        Server unreachable, wrong credentials, missing table, no geometry column; the
        message names the URI with the password masked and the fix.
    CRSError
        The geometry has SRID 0.
    """
    import sqlalchemy as sa

    src = parse_db_uri(uri)
    if src.table is None and src.sql is None:
        raise InputError(f"{src.masked}: name what to read: ?table=schema.name or ?sql=SELECT …")
    engine = _engine(src)
    try:
        with engine.connect() as conn:
            with conn.begin():
                if src.table is not None:
                    return _read_table(conn, src)
                return _read_query(conn, src)
    except (InputError, CRSError):
        raise
    except sa.exc.OperationalError as exc:
        raise _connect_error(src, exc) from exc
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0]
        if getattr(exc.orig, "sqlstate", None) == "25006":
            raise InputError(f"{src.masked}: the query tried to write ({first}); sql= runs "
                             "read-only: give a SELECT") from exc
        raise InputError(f"{src.masked}: the query failed ({first}); sql= must be one SELECT "
                         "query returning a geometry column") from exc
    finally:
        engine.dispose()


def _read_table(conn: Any, src: DbSource) -> gpd.GeoDataFrame:
    schema, table = src.table_parts()
    if not _table_exists(conn, schema, table):
        raise InputError(f"{src.masked}: no table {schema}.{table}; check the name (and the "
                         "schema, e.g. ?table=gis.roads)")
    geoms = _geometry_columns(conn, schema, table)
    if src.geom is not None:
        geoms = [g for g in geoms if g[0] == src.geom]
        if not geoms:
            raise InputError(f"{src.masked}: table {schema}.{table} has no geometry column "
                             f"{src.geom!r}")
    if not geoms:
        raise InputError(f"{src.masked}: table {schema}.{table} has no geometry column; "
                         "geosvc needs a PostGIS geometry (points, lines or polygons)")
    column, srid = geoms[0]
    crs = _crs_of(src, srid, column)
    import sqlalchemy as sa

    query = sa.text(f"SELECT * FROM {_quote(conn, schema)}.{_quote(conn, table)}")
    gdf = gpd.read_postgis(query, conn, geom_col=column, crs=crs)
    return _as_geometry_named(gdf)


def _read_query(conn: Any, src: DbSource) -> gpd.GeoDataFrame:
    import sqlalchemy as sa

    assert src.sql is not None
    conn.execute(sa.text("SET TRANSACTION READ ONLY"))
    sql = src.sql.strip().rstrip(";")
    probe = conn.execute(sa.text(f"SELECT * FROM ({sql}) AS q LIMIT 0"))
    names = list(probe.keys())
    geom_oid = conn.execute(sa.text("SELECT oid FROM pg_type WHERE typname = 'geometry'")).scalar()
    desc = probe.cursor.description if probe.cursor is not None else []
    found = [d[0] for d in desc if geom_oid is not None and d[1] == geom_oid]
    column = src.geom or (found[0] if found else None)
    if column is None or column not in names:
        raise InputError(f"{src.masked}: the query returns no geometry column"
                         + (f" {src.geom!r}" if src.geom else "")
                         + "; select one (e.g. SELECT id, geom FROM …) or name it with &geom=")
    srid = conn.execute(sa.text(
        f"SELECT ST_SRID({_quote(conn, column)}) FROM ({sql}) AS q "
        f"WHERE {_quote(conn, column)} IS NOT NULL LIMIT 1")).scalar()
    crs = _crs_of(src, int(srid or 0), column)
    gdf = gpd.read_postgis(sa.text(sql), conn, geom_col=column, crs=crs)
    return _as_geometry_named(gdf)


def _as_geometry_named(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf if gdf.geometry.name == "geometry" else gdf.rename_geometry("geometry")


def _tmp_name(name: str) -> str:
    return f"geosvc_tmp_{os.getpid()}_{name}"[:63]


def _is_ours(conn: Any, schema: str, table: str) -> bool:
    import sqlalchemy as sa

    comment = conn.execute(sa.text(
        "SELECT obj_description(to_regclass(:q), 'pg_class')"),
        {"q": f"{_quote(conn, schema)}.{_quote(conn, table)}"}).scalar()
    return bool(comment) and str(comment).startswith(GEOSVC_MARK)


def _rename_indexes(conn: Any, schema: str, table: str) -> None:
    """Give the indexes of a renamed table names derived from its final name."""
    import sqlalchemy as sa

    rows = conn.execute(sa.text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = :s AND tablename = :t "
        "ORDER BY indexname"), {"s": schema, "t": table}).all()
    for k, (index,) in enumerate(rows):
        new = f"{table}_geom_idx" if k == 0 else f"{table}_idx{k}"
        if index != new:
            conn.execute(sa.text(f"ALTER INDEX {_quote(conn, schema)}.{_quote(conn, index)} "
                                 f"RENAME TO {_quote(conn, new[:63])}"))


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name:
            continue
        if out[col].dtype == object or isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, str | int | float | bool)
                                    else json.dumps(v, ensure_ascii=False, default=str))
    if isinstance(out, gpd.GeoDataFrame) and out.geometry.name != "geom":
        out = out.rename_geometry("geom")
    return out


def write_postgis_tables(uri: str, tables: Mapping[str, pd.DataFrame], *,
                         summary: Mapping[str, Any] | None = None) -> list[str]:
    """Write ``tables`` (name → frame) into ``?schema=`` of ``uri`` in one transaction.

    Each table is written under a temporary name, given a spatial index when it has
    geometry, and renamed into place at commit; earlier geosvc tables of the same names are
    replaced, any other existing table is an error (nothing is written).  ``summary`` is
    stored as one JSON row in the table ``summary``.

    Returns
    -------
    list of str
        The qualified names written.
    """
    import sqlalchemy as sa

    src = parse_db_uri(uri)
    schema = src.schema or "geosvc"
    names = list(tables) + (["summary"] if summary is not None else [])
    engine = _engine(src)
    written: list[str] = []
    try:
        with engine.begin() as conn:
            qs = _quote(conn, schema)
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {qs}"))
            for name in names:
                if _table_exists(conn, schema, name) and not _is_ours(conn, schema, name):
                    raise InputError(
                        f"{src.masked}: table {schema}.{name} exists and was not created by "
                        "geosvc; geosvc never replaces it: choose another ?schema=")
            frames = dict(tables)
            if summary is not None:
                frames["summary"] = pd.DataFrame(
                    {"summary": [json.dumps(summary, ensure_ascii=False, default=str)]})
            for name, frame in frames.items():
                tmp = _tmp_name(name)
                prepared = _prepare(frame)
                if isinstance(prepared, gpd.GeoDataFrame):
                    if prepared.crs is None:
                        raise CRSError(f"output table {name}: the frame has no CRS")
                    prepared.to_postgis(tmp, conn, schema=schema, if_exists="fail", index=False)
                else:
                    prepared.to_sql(tmp, conn, schema=schema, if_exists="fail", index=False)
                if name == "summary":
                    conn.execute(sa.text(
                        f"ALTER TABLE {qs}.{_quote(conn, tmp)} ALTER COLUMN summary "
                        "TYPE jsonb USING summary::jsonb"))
            for name in frames:
                qn, qt = _quote(conn, name), _quote(conn, _tmp_name(name))
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {qs}.{qn}"))
                conn.execute(sa.text(f"ALTER TABLE {qs}.{qt} RENAME TO {qn}"))
                _rename_indexes(conn, schema, name)
                comment = f"{GEOSVC_MARK} (output table {name})".replace("'", "''")
                conn.exec_driver_sql(f"COMMENT ON TABLE {qs}.{qn} IS '{comment}'")
                written.append(f"{schema}.{name}")
    except (InputError, CRSError):
        raise
    except sa.exc.OperationalError as exc:
        raise _connect_error(src, exc) from exc
    finally:
        engine.dispose()
    log.info("wrote %d tables to %s (schema %s)", len(written), src.masked.split("?")[0], schema)
    return written


def check_db_output(uri: str) -> str:
    """Preflight of a database output: connect, check PostGIS; returns the schema name.

    Run before any work, so a wrong host, password or database fails at once.
    """
    import sqlalchemy as sa

    src = parse_db_uri(uri)
    if src.table or src.sql:
        raise InputError(f"{src.masked}: an output URI names a schema (?schema=name), not a "
                         "table or query")
    engine = _engine(src)
    try:
        with engine.connect() as conn:
            has = conn.execute(sa.text(
                "SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first()
    except sa.exc.OperationalError as exc:
        raise _connect_error(src, exc) from exc
    finally:
        engine.dispose()
    if not has:
        raise InputError(f"{src.masked}: the database has no PostGIS; run CREATE EXTENSION "
                         "postgis (as its owner) or choose another database")
    return src.schema or "geosvc"


def publish_folder(folder: str | Path, uri: str) -> list[str]:
    """Write the tables of a finished run folder to PostGIS (see :func:`write_postgis_tables`).

    Every GeoPackage layer becomes a table named after the layer (households, community,
    street, facility_circles, category_circles, stations_<category> …), CSV files without a
    GeoPackage of the same name become tables too (siting_curve), ``summary.json`` the
    ``summary`` table.
    """
    import pyogrio

    root = Path(folder)
    tables: dict[str, pd.DataFrame] = {}
    for gpkg in sorted(root.glob("*.gpkg")):
        for layer, _geom_type in pyogrio.list_layers(gpkg):
            if str(layer) == "layer_styles":  # QGIS styles (geosvc.qgis), not results
                continue
            key = str(layer) if str(layer) not in tables else f"{gpkg.stem}_{layer}"
            tables[key] = gpd.read_file(gpkg, layer=str(layer), engine="pyogrio")
    for csv in sorted(root.glob("*.csv")):
        if not (root / f"{csv.stem}.gpkg").exists():
            tables[csv.stem] = pd.read_csv(csv)
    summary_path = root / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) \
        if summary_path.exists() else None
    return write_postgis_tables(uri, tables, summary=summary)
