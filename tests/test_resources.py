"""Step records (time, peak resident memory), memory sizes and the memory budget."""

from __future__ import annotations

import numpy as np
import pytest

from geosvc import resources
from geosvc._errors import ConfigError, MemoryLimitError


@pytest.mark.parametrize("text,expected", [
    ("8GB", 8 * 10**9), ("512MB", 512 * 10**6), ("1.5GiB", int(1.5 * 2**30)),
    ("2g", 2 * 10**9), (" 300 mib ", 300 * 2**20), (4096, 4096), ("1000", 1000),
])
def test_parse_memory(text, expected):
    assert resources.parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["lots", "8XB", "-1GB", "0", 0, -5, "GB"])
def test_parse_memory_rejects(bad):
    with pytest.raises(ConfigError, match="memory limit"):
        resources.parse_memory(bad)


def test_measure_sees_an_allocation_and_folds_into_the_parent():
    size = 300 * 2**20
    with resources.collect_steps() as log:
        with resources.measure("outer") as outer:
            with resources.measure("inner") as inner:
                block = np.ones(size // 8)  # touched pages: resident
                assert block[-1] == 1.0
                del block
    # the allocation itself is the oracle: the peak is at least start + 300 MiB
    assert inner.peak_rss_mb - inner.rss_start_mb >= 0.95 * size / 2**20
    assert outer.peak_rss_mb >= inner.peak_rss_mb
    assert [s.name for s in log.steps] == ["inner", "outer"]
    assert [s.depth for s in log.steps] == [1, 0]
    assert log.peak_rss_mb >= inner.peak_rss_mb
    assert inner.seconds >= 0 and inner.cpu_seconds >= 0


def test_measure_records_a_failing_step():
    with resources.collect_steps() as log:
        with pytest.raises(RuntimeError), resources.measure("fails"):
            raise RuntimeError("boom")
    assert [s.name for s in log.steps] == ["fails"]


def test_memory_limit_budget_and_check():
    assert resources.active_limit() is None
    with resources.memory_limit("1GB"):
        assert resources.active_limit() == 10**9
        assert resources.budget_bytes() == 10**9
        with resources.memory_limit(None):  # keeps the outer limit
            assert resources.active_limit() == 10**9
        with pytest.raises(MemoryLimitError, match=r"households needs about 5\.0 GB but the "
                                                   r"memory limit 1\.0 GB"):
            resources.check_fits("households", 5e9)
        assert resources.available_bytes(floor=1) <= 10**9
    # a limit above what this (test) process already holds leaves room for a little more,
    # whatever other tests left resident before this one
    lim = resources.rss_bytes() + 10**9
    with resources.memory_limit(lim):
        resources.check_fits("a little", 1e3)
        with pytest.raises(MemoryLimitError, match="households needs about 5.0 GB"):
            resources.check_fits("households", 5e9)
    assert resources.active_limit() is None
    resources.check_fits("anything without a limit", 1e15)
