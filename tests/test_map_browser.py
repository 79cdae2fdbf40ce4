"""The map in a real browser: headless Chromium loads map.html offline without errors.

Uses only Chromium's own command-line modes (``--dump-dom``, ``--screenshot``), no
Playwright or Selenium.  A copy of the page gets a recorder at the top of ``<head>``
(``window.onerror``, resource errors, ``alert``) and a probe after load that opens every
popup and hovers every feature, so escaped names are rendered as the user would see them.
Skipped when Chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geosvc.viz import coverage_map, write_map
from tests.test_viz import (
    SCRIPT_NAME,
    make_areas,
    make_circles,
    make_facilities,
    make_households,
    make_stations,
)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed "
                                "(apt-get install chromium); .ci/run installs it")

RECORDER = """<script>
window.__gsErrors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__gsErrors.push(e.message ? "error: " + e.message :
    "resource: " + ((t && (t.src || t.href)) || "?"));
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__gsErrors.push("rejection: " + e.reason);
});
window.alert = function (m) { window.__gsErrors.push("alert: " + m); };
</script>"""

PROBE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var out = {errors: [], popups: [], tooltips: [], maps: 0};
  try {
    var names = Object.keys(window).filter(function (k) { return /^map_/.test(k); });
    out.maps = names.length;
    var map = window[names[0]];
    var layers = [];
    map.eachLayer(function (l) { layers.push(l); });
    var hovered = 0;  // enough to see every kind of tooltip, quick on large maps
    layers.forEach(function (l) {
      if (l.getPopup && l.getPopup()) {
        l.openPopup();
        var el = l.getPopup().getElement();
        if (el) { out.popups.push(el.querySelector(".leaflet-popup-content").innerHTML); }
        l.closePopup();
      }
      var c = l.getBounds ? l.getBounds().getCenter() : (l.getLatLng ? l.getLatLng() : null);
      if (c && hovered++ < 400 && (l.getTooltip && l.getTooltip() || (l._eventParents &&
          Object.keys(l._eventParents).length))) {
        l.fire("mouseover", {latlng: c}, true);
        var all = document.querySelectorAll(".leaflet-tooltip");
        var tip = all.length ? all[all.length - 1] : null;
        if (tip) { out.tooltips.push(tip.innerHTML); }
        l.fire("mouseout", {latlng: c}, true);
      }
    });
  } catch (err) { window.__gsErrors.push("probe: " + err); }
  setTimeout(function () {  // late errors too (an injected <img> fails asynchronously)
    out.errors = window.__gsErrors.slice();
    var pre = document.createElement("pre");
    pre.id = "gs-probe";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }, 1000);
}, 200); });
</script>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900", "--virtual-time-budget=5000"]


def _run(args: list[str], profile_dir: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _instrumented(page: Path) -> Path:
    text = page.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>\n" + RECORDER, 1)
    text = text.replace("</body>", PROBE + "\n</body>", 1)
    out = page.with_name("instrumented_" + page.name)
    out.write_text(text, encoding="utf-8")
    return out


def _dump_dom(page: Path, tmp: Path) -> tuple[str, dict, str]:
    res = _run(["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
               tmp / "profile-dom")
    dom = res.stdout
    m = re.search(r'<pre id="gs-probe">(.*?)</pre>', dom, re.S)
    assert m, f"probe did not run; exit {res.returncode}; stderr tail: {res.stderr[-2000:]}"
    return dom, json.loads(html.unescape(m.group(1))), res.stderr


def _screenshot(page: Path, tmp: Path) -> np.ndarray:
    from matplotlib.image import imread

    png = tmp / "shot.png"
    res = _run([f"--screenshot={png}", page.as_uri()], tmp / "profile-shot")
    assert png.exists(), res.stderr[-2000:]
    return np.asarray(imread(str(png)))


def _layer_names(dom: str) -> list[str]:
    block = re.search(r'class="leaflet-control-layers-overlays">(.*?)</section>|'
                      r'class="leaflet-control-layers-overlays">(.*?)</div>\s*</form>', dom,
                      re.S)
    assert block, "no layer control in the rendered page"
    spans = re.findall(r"<span>\s*(.*?)</span>", block.group(0), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", s)).strip() for s in spans]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    fac = make_facilities()
    extra = gpd.GeoDataFrame({"facility_id": ["E2"], "category": ["elderly_care"],
                              "subtype": ["nursing_home"],
                              "name": ["<img src=x onerror=alert(3)>"],
                              "floor_area_m2": [900.0], "snap_status": ["ok"]},
                             geometry=[shapely.Point(431300, 3809300)], crs=fac.crs)
    fac = gpd.GeoDataFrame(np.concatenate([fac.to_numpy(), extra.to_numpy()]),
                           columns=fac.columns, geometry="geometry", crs=fac.crs)
    circles = make_circles()
    rings = [shapely.Point(430300, 3808300).buffer(50.0 * t) for t in (5.0, 10.0, 15.0)]
    circles["elderly_care"] = gpd.GeoDataFrame(
        {"category": "elderly_care", "threshold_min": [5.0, 10.0, 15.0]}, geometry=rings,
        crs=fac.crs)
    streets = gpd.GeoDataFrame(geometry=[
        shapely.LineString([(430000, 3808000 + 250 * i), (432000, 3808000 + 250 * i)])
        for i in range(9)], crs=fac.crs)
    m = coverage_map(make_households(), areas=make_areas(), facilities=fac,
                     circles=circles, stations=make_stations(), streets=streets, lang="zh")
    return write_map(m, tmp / "map.html")


def test_map_loads_without_errors_and_shows_layers(page: Path, tmp_path: Path) -> None:
    dom, probe, stderr = _dump_dom(_instrumented(page), tmp_path)
    assert probe["errors"] == [], probe["errors"]
    assert "Uncaught" not in stderr, stderr[-2000:]
    assert probe["maps"] == 1
    names = _layer_names(dom)
    for expected in ("未覆盖住户 · 一刻钟居家养老服务圈", "未覆盖住户 · 一刻钟便民生活圈",
                     "不可达住户（无路径或远离道路）· 一刻钟居家养老服务圈",
                     "已覆盖住户（250米网格）· 一刻钟居家养老服务圈",
                     "5分钟服务圈 · 一刻钟居家养老服务圈", "10分钟服务圈 · 一刻钟居家养老服务圈",
                     "15分钟服务圈 · 一刻钟居家养老服务圈", "现有设施 · 一刻钟居家养老服务圈",
                     "建议新站点 · 一刻钟居家养老服务圈", "社区覆盖率 · 一刻钟居家养老服务圈",
                     "街道边界", "街道（简化）"):
        assert expected in names, (expected, names)
    # one entry per threshold, each exactly once (not one label over stacked polygons)
    assert sum("分钟服务圈" in n for n in names) == 3
    # listed as planners read them, the widest circle first: 15 -> 10 -> 5 (as the browser shows)
    circle_rows = [n for n in names if "分钟服务圈" in n]
    assert [n.split("分钟")[0] for n in circle_rows] == ["15", "10", "5"], circle_rows
    # convenience households: no one unreachable, so no empty layer for them
    assert "不可达住户（无路径或远离道路）· 一刻钟便民生活圈" not in names
    # Leaflet drew the vector layers (SVG paths) and the markers
    assert dom.count("leaflet-interactive") > 10
    paths = re.findall(r"<path[^>]+leaflet-interactive", dom)
    assert len(paths) >= 5 + 2 + 2  # uncovered points, covered cells, areas
    # circles and streets are drawn but take no mouse events
    assert len(re.findall(r"<path", dom)) >= len(paths) + 1 + 1
    legend = dom[dom.index('class="gs-legend'):]
    for minutes in (5, 10, 15):  # the legend names every threshold drawn
        assert f"服务圈 ({minutes} 分钟)" in legend
    assert dom.count('class="gs-st"') == 2 and dom.count('class="gs-fac"') == 2
    assert 'class="gs-legend' in dom and 'class="gs-title' in dom
    assert not re.search(r"<img[^>]+leaflet-tile", dom)  # no basemap tiles requested


def test_names_render_as_text_in_popups_and_tooltips(page: Path, tmp_path: Path) -> None:
    dom, probe, _ = _dump_dom(_instrumented(page), tmp_path)
    assert probe["errors"] == []  # no alert() ran
    popups = "\n".join(probe["popups"])
    tips = "\n".join(probe["tooltips"])
    # innerHTML of the opened popup: the name is text, so its "<" is serialised as &lt;
    assert html.escape(SCRIPT_NAME, quote=False) in popups
    assert "&lt;img src=x onerror=alert(3)&gt;" in popups
    assert "<img" not in popups and "<script" not in popups
    assert "第 1 号建议站点" in popups and "新增覆盖户数" in popups
    assert "&lt;img src=x onerror=alert(2)&gt;" in tips  # community name in its tooltip
    assert "<img" not in tips
    assert "超出服务圈" in tips  # a household tooltip


def test_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    img = _screenshot(page, tmp_path)
    assert img.shape[0] >= 800 and img.shape[1] >= 1100
    rgb = (img[..., :3] * 255).round().astype(np.int64)
    assert float(rgb.std()) > 10.0
    colours = np.unique(rgb.reshape(-1, 3) @ np.array([65536, 256, 1]))
    assert len(colours) > 100
    # the plain background is not the whole picture: the middle holds drawn features
    mid = rgb[300:700, 300:900].reshape(-1, 3)
    background = np.array([0xF3, 0xF1, 0xEC])
    assert float((np.abs(mid - background).sum(axis=1) > 30).mean()) > 0.2


def test_large_map_uses_canvas_and_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    status = rng.choice(["covered", "uncovered"], n, p=[0.3, 0.7])
    hh = gpd.GeoDataFrame({
        "hh_id": [f"B{i}" for i in range(n)], "households": 50, "invalid_reason": "",
        "time_elderly_care_min": np.where(status == "covered", 8.0, 22.0),
        "status_elderly_care": status,
    }, geometry=shapely.points(rng.uniform(430000, 434000, n),
                               rng.uniform(3808000, 3812000, n)), crs="EPSG:32650")
    page = write_map(coverage_map(hh, lang="en"), tmp_path / "big.html")
    dom, probe, _ = _dump_dom(_instrumented(page), tmp_path)
    assert probe["errors"] == [], probe["errors"]
    assert "<canvas" in dom
    assert "Uncovered households · 15-minute home elderly-care circle" in _layer_names(dom)
