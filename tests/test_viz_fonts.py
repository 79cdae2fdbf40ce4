"""Chinese figure labels use the Simplified Chinese face, regular weight, without warnings."""

from __future__ import annotations

import logging
import warnings

import pytest

from geosvc.viz import _fonts
from geosvc.viz._fonts import FontFace, installed_cjk_faces


def test_ranking_prefers_simplified_chinese_sans_regular() -> None:
    faces = [
        FontFace("a.ttc", 0, "Noto Sans CJK JP", "Regular", 80),
        FontFace("b.ttc", 2, "Noto Sans CJK SC", "Bold", 200),
        FontFace("a.ttc", 2, "Noto Sans CJK SC", "Regular", 80),
        FontFace("c.ttc", 2, "Noto Serif CJK SC", "Regular", 80),
        FontFace("d.ttf", 0, "WenQuanYi Zen Hei", "Regular", 80),
    ]
    best = sorted(faces, key=FontFace.rank)
    assert (best[0].family, best[0].weight) == ("Noto Sans CJK SC", 80)
    assert best[1].family == "Noto Sans CJK SC" and best[1].weight == 200
    assert best[-1].family != "Noto Sans CJK JP" or best[-2].family != "Noto Sans CJK SC"


noto = [f for f in installed_cjk_faces() if f.family == "Noto Sans CJK SC"]


@pytest.mark.skipif(not noto, reason="fonts-noto-cjk not installed (.ci/run installs it)")
def test_noto_collection_gives_the_sc_face_and_no_findfont_warnings(tmp_path, monkeypatch,
                                                                    caplog) -> None:
    from matplotlib.figure import Figure

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _fonts.cjk_font.cache_clear()
    try:
        name = _fonts.cjk_font()
        assert name == "Noto Sans CJK SC"  # not the collection's first (Japanese) face
        extracted = list((tmp_path / "geosvc" / "fonts").glob("*.otf"))
        assert len(extracted) == 1 and "Regular" in extracted[0].name
        import matplotlib

        with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as got, \
                matplotlib.rc_context({"font.family": "sans-serif",
                                       "font.sans-serif": [name, "DejaVu Sans"]}):
            warnings.simplefilter("always")
            fig = Figure(figsize=(2, 1))
            fig.text(0.1, 0.5, "户数 覆盖率 养老")
            fig.savefig(tmp_path / "zh.png")
        assert not [r for r in caplog.records if "findfont" in r.getMessage()]
        assert not [w for w in got if "Glyph" in str(w.message) or "findfont" in str(w.message)]
    finally:
        _fonts.cjk_font.cache_clear()
