"""The output vocabulary: the one coverage rule, snap labels and column names."""

from __future__ import annotations

import numpy as np

from geosvc import _schema as schema
from geosvc.access import SNAP_INVALID, SNAP_OFF_NETWORK, SNAP_OK


def test_covered_rule_is_metres_with_float_slack() -> None:
    d = np.array([999.0, 1000.0, 1000.0 + 5e-7, 1000.0 + 2e-6, np.inf, np.nan])
    assert schema.covered(d, 1000.0).tolist() == [True, True, True, False, False, False]


def test_covered_rule_same_in_minutes_and_metres() -> None:
    """A time column turned back into metres gives the verdict of the distance itself."""
    speed, thr = 0.8, 15.0
    reach = thr * 60.0 * speed
    d = np.array([reach - 1e-3, reach, reach + 1e-7, reach + 1e-3])
    t_min = d / speed / 60.0
    again = schema.covered(t_min * (reach / thr), reach)
    assert again.tolist() == schema.covered(d, reach).tolist() == [True, True, True, False]


def test_snap_labels_follow_the_snap_codes() -> None:
    codes = np.array([SNAP_OK, SNAP_OFF_NETWORK, SNAP_INVALID, SNAP_OK])
    assert schema.snap_labels(codes).tolist() == ["ok", "off_network", "invalid", "ok"]


def test_column_names_are_the_documented_scheme() -> None:
    assert schema.status_col("elderly_care") == "status_elderly_care"
    assert schema.status_col("convenience", "pharmacy") == "status_convenience_pharmacy"
    assert schema.time_col("elderly_care") == "time_elderly_care_min"
    assert schema.time_col("convenience", "pharmacy") == "time_convenience_pharmacy_min"
    assert schema.time_any_col("convenience") == "time_convenience_any_min"
    assert schema.nearest_id_col("x") == "nearest_x_id"
    assert schema.access_index_col("x") == "access_index_x"
    assert schema.area_col("x", "coverage_rate") == "x_coverage_rate"
    assert set(schema.NOT_COVERED) | {"covered", "invalid"} == set(schema.STATUSES)
