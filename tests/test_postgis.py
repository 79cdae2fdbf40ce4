"""PostGIS in and out against a real PostgreSQL + PostGIS server started by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geosvc._errors import CRSError, InputError
from geosvc.postgis import mask_uri, parse_db_uri, read_postgis_layer, write_postgis_tables
from tests.pgserver import PASSWORD, TempPostgres, postgres_bin_dir

pytestmark = pytest.mark.skipif(postgres_bin_dir() is None,
                                reason="PostgreSQL not installed (.ci/run installs "
                                "postgresql-15-postgis-3)")


@pytest.fixture(scope="module")
def pg():
    server = TempPostgres().start()
    old = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PASSWORD  # credentials from libpq's environment, as users do
    try:
        server.sql("CREATE SCHEMA gis")
        pts = gpd.GeoDataFrame(
            {"hh_id": [f"H{i}" for i in range(50)], "households": np.arange(50, dtype=float),
             "name": ["社区一"] * 25 + ["社区二"] * 25},
            geometry=shapely.points(np.c_[np.linspace(116.3, 116.4, 50), np.full(50, 39.9)]),
            crs="EPSG:4326")
        import sqlalchemy as sa

        engine = sa.create_engine(server.uri.replace("postgresql://", "postgresql+psycopg://"))
        pts.to_postgis("households", engine, schema="gis")  # loaded by geopandas, not geosvc
        engine.dispose()
        server.sql("CREATE SEQUENCE gis.s")
        server.sql("CREATE TABLE gis.plain (id int, label text)")
        server.sql("INSERT INTO gis.plain VALUES (1, 'a')")
        server.sql("CREATE TABLE gis.nosrid (id int, geom geometry(Point))")
        server.sql("INSERT INTO gis.nosrid VALUES (1, 'POINT(1 2)')")
        yield server
    finally:
        if old is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = old
        server.stop()


def test_uri_parsing_and_masking() -> None:
    src = parse_db_uri("postgresql://ann:s3cret@db:5433/city?table=gis.roads&sslmode=disable")
    assert src.table == "gis.roads" and src.table_parts() == ("gis", "roads")
    assert "sslmode=disable" in src.connect_url and "table=" not in src.connect_url
    assert "s3cret" not in src.masked and "ann:***@db:5433" in src.masked
    assert mask_uri("postgresql://ann@db/city") == "postgresql://ann@db/city"
    with pytest.raises(InputError, match="either table= or sql="):
        parse_db_uri("postgresql://db/city?table=a&sql=SELECT 1")


def test_read_table_equals_what_was_loaded(pg) -> None:
    gdf = read_postgis_layer(pg.uri + "?table=gis.households")
    assert len(gdf) == 50 and gdf.crs.to_epsg() == 4326
    assert gdf.geometry.name == "geometry"
    assert list(gdf["hh_id"]) == [f"H{i}" for i in range(50)]
    assert gdf["name"].iloc[0] == "社区一"
    assert np.allclose(gdf.geometry.x, np.linspace(116.3, 116.4, 50))


def test_read_query_is_read_only(pg) -> None:
    gdf = read_postgis_layer(pg.uri + "?sql=SELECT hh_id, geometry FROM gis.households "
                             "WHERE households >= 40")
    assert list(gdf["hh_id"]) == [f"H{i}" for i in range(40, 50)]
    with pytest.raises(InputError, match="read-only"):
        read_postgis_layer(pg.uri + "?sql=SELECT hh_id, geometry, nextval('gis.s') AS n "
                           "FROM gis.households")
    with pytest.raises(InputError, match="one SELECT"):
        read_postgis_layer(pg.uri + "?sql=DELETE FROM gis.households RETURNING *")
    assert pg.sql("SELECT count(*) FROM gis.households").strip() == "50"


def test_table_names_are_quoted_identifiers(pg) -> None:
    with pytest.raises(InputError, match="no table"):
        read_postgis_layer(pg.uri + "?table=gis.households; DROP TABLE gis.plain")
    assert pg.sql("SELECT count(*) FROM gis.plain").strip() == "1"


@pytest.mark.parametrize(("suffix", "exc", "needle"), [
    ("?table=gis.missing", InputError, "no table gis.missing"),
    ("?table=gis.plain", InputError, "no geometry column"),
    ("?table=gis.nosrid", CRSError, "SRID 0"),
    ("?sql=SELECT id FROM gis.plain", InputError, "returns no geometry column"),
    ("", InputError, "name what to read"),
])
def test_bad_database_input_is_one_clear_error(pg, suffix, exc, needle) -> None:
    with pytest.raises(exc, match=needle):
        read_postgis_layer(pg.uri + suffix)


def test_unreachable_server_and_wrong_password(pg) -> None:
    with pytest.raises(InputError, match="cannot connect") as info:
        read_postgis_layer(f"postgresql://geosvc:pw@127.0.0.1:{pg.port + 1}/geosvc?table=t")
    assert "pw@" not in str(info.value)
    bad = pg.uri.replace("geosvc@", "geosvc:wrong-secret@") + "?table=gis.households"
    with pytest.raises(InputError, match="password") as info:
        read_postgis_layer(bad)
    assert "wrong-secret" not in str(info.value) and "***" in str(info.value)


def _frames() -> dict[str, pd.DataFrame]:
    pts = gpd.GeoDataFrame({"hh_id": ["a", "b"], "status": ["covered", "uncovered"],
                            "time_min": [3.5, np.nan]},
                           geometry=[shapely.Point(500000, 4000000), shapely.Point(500100, 4000000)],
                           crs="EPSG:32650")
    table = pd.DataFrame({"rank": [1], "candidate_id": ["C1"]})
    return {"households": pts, "stations": table}


def test_write_replaces_own_tables_and_keeps_others(pg) -> None:
    out = pg.uri + "?schema=run_a"
    written = write_postgis_tables(out, _frames(), summary={"coverage_rate": 0.5, "名": "x"})
    assert written == ["run_a.households", "run_a.stations", "run_a.summary"]
    assert pg.sql("SELECT count(*) FROM run_a.households").strip() == "2"
    assert pg.sql("SELECT Find_SRID('run_a', 'households', 'geom')").strip() == "32650"
    assert pg.sql("SELECT summary->>'coverage_rate' FROM run_a.summary").strip() == "0.5"
    idx = pg.sql("SELECT indexdef FROM pg_indexes WHERE schemaname='run_a' "
                 "AND tablename='households'")
    assert "gist" in idx.lower()
    # rerun: replaced, not appended
    frames = _frames()
    frames["households"] = frames["households"].iloc[:1]
    write_postgis_tables(out, frames)
    assert pg.sql("SELECT count(*) FROM run_a.households").strip() == "1"
    # a table geosvc did not create is never replaced, and nothing else is written
    pg.sql("CREATE SCHEMA run_b")
    pg.sql("CREATE TABLE run_b.stations (keep int)")
    with pytest.raises(InputError, match="not created by geosvc"):
        write_postgis_tables(pg.uri + "?schema=run_b", _frames())
    assert pg.sql("SELECT string_agg(tablename, ',') FROM pg_tables "
                  "WHERE schemaname='run_b'").strip() == "stations"


def test_failed_write_leaves_no_table(pg) -> None:
    frames = _frames()
    frames["broken"] = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)])  # no CRS
    with pytest.raises(CRSError):
        write_postgis_tables(pg.uri + "?schema=run_c", frames)
    assert pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname='run_c'").strip() == "0"


def test_killed_run_leaves_no_table(pg) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        import geopandas as gpd, pandas as pd, shapely
        import geosvc.postgis as pgmod
        real = pgmod._prepare
        calls = []
        def dying(frame):
            calls.append(1)
            if len(calls) == 2:  # the first table is already written in the transaction
                os.kill(os.getpid(), signal.SIGKILL)
            return real(frame)
        pgmod._prepare = dying
        hh = gpd.GeoDataFrame({{"a": [1]}}, geometry=[shapely.Point(0, 0)], crs="EPSG:32650")
        pgmod.write_postgis_tables({pg.uri + "?schema=run_d"!r},
                                   {{"households": hh, "stations": pd.DataFrame({{"r": [1]}})}})
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False, env=dict(os.environ, PGPASSWORD=PASSWORD))
    assert res.returncode == -9, res.stderr
    tables = pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname='run_d' "
                    "OR tablename LIKE 'geosvc_tmp_%'").strip()
    assert tables == "0"


def test_summary_is_valid_json(pg) -> None:
    write_postgis_tables(pg.uri + "?schema=run_e", {}, summary={"warnings": [], "x": [1, 2]})
    got = json.loads(pg.sql("SELECT summary::text FROM run_e.summary").strip())
    assert got == {"warnings": [], "x": [1, 2]}


# ---------------------------------------------------------------------------------------------
# the command line: inputs from PostGIS, outputs to PostGIS, equal to the file-based run
# ---------------------------------------------------------------------------------------------
LAYERS = {"roads": "roads", "households": "buildings", "facilities": "facilities",
          "compounds": "compounds", "community": "communities"}


@pytest.fixture(scope="module")
def district_in_db(pg, tmp_path_factory):
    import sqlalchemy as sa

    from geosvc.datasets import generate_district, write_district

    folder = tmp_path_factory.mktemp("pg_district")
    path = write_district(generate_district(seed=5, scale=0.35), folder / "district.gpkg")
    pg.sql("CREATE SCHEMA city")
    engine = sa.create_engine(pg.uri.replace("postgresql://", "postgresql+psycopg://"))
    files = {}
    for key, layer in LAYERS.items():
        gdf = gpd.read_file(path, layer=layer)
        gdf.to_postgis(key, engine, schema="city")  # loaded by geopandas, not by geosvc
        files[key] = folder / f"{key}.gpkg"
        gdf.to_file(files[key])
    engine.dispose()
    return files


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "geosvc.cli", "-q", *args], capture_output=True,
                          text=True, timeout=600, check=False,
                          env=dict(os.environ, PGPASSWORD=PASSWORD))


def test_cli_round_trip_equals_file_run(pg, district_in_db, tmp_path) -> None:
    f = district_in_db
    out = tmp_path / "files"
    res = _cli("coverage", "--roads", str(f["roads"]), "--households", str(f["households"]),
               "--facilities", str(f["facilities"]), "--compounds", str(f["compounds"]),
               "--areas", f"community={f['community']}:community_id:name", "--out", str(out))
    assert res.returncode == 0, res.stderr
    t = {k: f"{pg.uri}?table=city.{k}" for k in LAYERS}
    res = _cli("coverage", "--roads", t["roads"], "--households", t["households"],
               "--facilities", t["facilities"], "--compounds", t["compounds"],
               "--areas", f"community={t['community']}:community_id:name",
               "--out", f"{pg.uri}?schema=run_rt")
    assert res.returncode == 0, res.stderr
    assert "tables written to" in res.stdout and PASSWORD not in res.stdout + res.stderr
    import sqlalchemy as sa

    engine = sa.create_engine(pg.uri.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        db_hh = gpd.read_postgis("SELECT * FROM run_rt.households", conn, geom_col="geom")
        db_comm = gpd.read_postgis("SELECT * FROM run_rt.community", conn, geom_col="geom")
        db_summary = conn.execute(sa.text("SELECT summary FROM run_rt.summary")).scalar()
    engine.dispose()
    file_hh = gpd.read_file(out / "households.gpkg", layer="households")
    assert len(db_hh) == len(file_hh)
    assert list(db_hh["hh_id"]) == list(file_hh["hh_id"])
    for col in [c for c in file_hh.columns if c.startswith(("status_", "time_"))]:
        a, b = db_hh[col].to_numpy(), file_hh[col].to_numpy()
        if col.startswith("time_"):
            assert np.allclose(a.astype(float), b.astype(float), equal_nan=True, atol=1e-9), col
        else:
            assert (a == b).all(), col
    file_comm = gpd.read_file(out / "areas.gpkg", layer="community")
    assert np.allclose(db_comm["elderly_care_coverage_rate"].astype(float),
                       file_comm["elderly_care_coverage_rate"].astype(float), equal_nan=True)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for cat, c in summary["categories"].items():
        assert db_summary["categories"][cat]["coverage_rate"] == pytest.approx(c["coverage_rate"])
    uris = json.dumps(db_summary["run"]["inputs"])
    assert "table" in uris and PASSWORD not in uris
    assert db_hh.crs is not None and db_hh.crs.equals(file_hh.crs)


def test_cli_database_errors_are_one_line_exit_2(pg, district_in_db, tmp_path) -> None:
    f = district_in_db
    bad_out = _cli("coverage", "--roads", str(f["roads"]), "--households", str(f["households"]),
                   "--facilities", str(f["facilities"]),
                   "--out", f"postgresql://geosvc@127.0.0.1:{pg.port + 1}/geosvc?schema=x")
    assert bad_out.returncode == 2
    line = bad_out.stderr.strip().splitlines()[-1]
    assert line.startswith("geosvc: error:") and "cannot connect" in line
    missing = _cli("coverage", "--roads", f"{pg.uri}?table=city.nope", "--households",
                   str(f["households"]), "--facilities", str(f["facilities"]),
                   "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no table city.nope" in missing.stderr
