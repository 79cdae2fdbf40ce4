"""The font for Chinese figure labels: the Simplified Chinese face, regular weight.

CJK fonts usually come as collections (``NotoSansCJK-Regular.ttc`` holds the JP, KR, SC, TC
and HK faces).  matplotlib reads only the first face of a collection, which for Noto is the
Japanese one (户 and 骨 drawn with Japanese strokes), and fontconfig may list the bold file
first.  :func:`cjk_font` asks fontconfig for every face, ranks Simplified Chinese sans-serif
regular first, and when the face sits inside a collection extracts it once (fontTools) into
``$XDG_CACHE_HOME/geosvc/fonts`` (default ``~/.cache/geosvc/fonts``) so matplotlib loads
exactly that face.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["cjk_font", "FontFace", "installed_cjk_faces"]

log = logging.getLogger(__name__)

#: Families in order of preference (Simplified Chinese faces first).
PREFERRED_CJK = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Micro Hei",
                 "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC",
                 "Noto Serif CJK SC", "Source Han Serif SC", "AR PL UMing CN")
_REGULAR_WEIGHT = 80  # fontconfig's FC_WEIGHT_REGULAR


@dataclass(frozen=True)
class FontFace:
    """One face as fontconfig lists it."""

    file: str
    index: int
    family: str
    style: str
    weight: int

    def rank(self) -> tuple[int, int, int, int]:
        """Sort key: preferred family, Simplified Chinese, sans-serif, closest to regular."""
        fam = self.family.lower()
        pref = next((k for k, p in enumerate(PREFERRED_CJK) if p.lower() in fam),
                    len(PREFERRED_CJK))
        sc = 0 if (" sc" in fam or fam.endswith("sc") or " cn" in fam) else 1
        serif = 1 if "serif" in fam and "sans" not in fam else 0
        return (pref, sc, serif, abs(self.weight - _REGULAR_WEIGHT))


def installed_cjk_faces() -> list[FontFace]:
    """Every face fontconfig lists for Chinese (``fc-list :lang=zh``), best first."""
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    fmt = "%{file}|%{index}|%{family[0]}|%{style[0]}|%{weight}\\n"
    try:
        out = subprocess.run([exe, ":lang=zh", "-f", fmt], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    faces = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) != 5 or not parts[0]:
            continue
        try:
            faces.append(FontFace(parts[0], int(parts[1] or 0), parts[2], parts[3],
                                  int(float(parts[4] or _REGULAR_WEIGHT))))
        except ValueError:
            continue
    return sorted(faces, key=FontFace.rank)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "geosvc" / "fonts"


def _single_face_file(face: FontFace) -> str:
    """A file holding only ``face``: the file itself, or the face cut out of a collection."""
    if not face.file.lower().endswith((".ttc", ".otc")):
        return face.file
    from fontTools.ttLib import TTCollection

    out = _cache_dir() / f"{Path(face.file).stem}-{face.index}.otf"
    if not out.exists() or out.stat().st_mtime < Path(face.file).stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        collection = TTCollection(face.file, lazy=True)
        collection.fonts[face.index].save(str(tmp))
        os.replace(tmp, out)
        log.info("extracted %s (face %d of %s) to %s", face.family, face.index, face.file, out)
    return str(out)


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Family name of the installed font for Chinese labels, registered with matplotlib.

    Returns ``None`` when no font with Chinese glyphs is installed (figures then use
    English labels).
    """
    from matplotlib import font_manager

    for face in installed_cjk_faces():
        try:
            path = _single_face_file(face)
            font_manager.fontManager.addfont(path)
            return str(font_manager.FontProperties(fname=path).get_name())
        except (OSError, RuntimeError, ValueError, IndexError) as exc:
            log.info("font %s (%s) not usable: %s", face.family, face.file, exc)
            continue
    known = {f.name for f in font_manager.fontManager.ttflist}
    return next((p for p in PREFERRED_CJK if p in known), None)
