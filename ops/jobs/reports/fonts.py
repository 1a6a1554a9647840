"""Fonts for the PDFs: every name in every script (issue 23.8).

A report whose text is all Latin-1 keeps fpdf2's core fonts (nothing to embed: fast). Any other
report embeds Noto Sans (Latin, Greek, Cyrillic, from the `fontpkg-noto-sans` wheel) with a fallback
font for each other script its text uses: Arabic, Devanagari, Thai, Tamil from the `fontpkg-noto-*`
wheels, Chinese, Japanese and Korean from Debian's `fonts-noto-cjk` where installed (the image and CI
install it), shaped by HarfBuzz (uharfbuzz) so that joined scripts read right. `scripts_of` is pure;
`available_faces` looks at what is installed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Code point ranges of the scripts that need a font of their own (the rest: the base font).
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "arabic": ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "devanagari": ((0x0900, 0x097F), (0xA8E0, 0xA8FF)),
    "tamil": ((0x0B80, 0x0BFF),),
    "thai": ((0x0E00, 0x0E7F),),
    "hebrew": ((0x0590, 0x05FF),),
    "cjk": (
        (0x1100, 0x11FF),  # Hangul jamo
        (0x2E80, 0x2FDF),
        (0x3000, 0x9FFF),  # CJK punctuation, kana, unified ideographs
        (0xAC00, 0xD7AF),  # Hangul syllables
        (0xF900, 0xFAFF),
        (0xFF00, 0xFFEF),
        (0x20000, 0x2FA1F),
    ),
}
#: Where each script's font comes from: a fontpkg wheel (module name), or files of the platform.
FONT_PACKAGES = {
    "base": "fontpkg_noto_sans",
    "arabic": "fontpkg_noto_sans_arabic",
    "devanagari": "fontpkg_noto_sans_devanagari",
    "tamil": "fontpkg_noto_sans_tamil",
    "thai": "fontpkg_noto_sans_thai",
}
PLATFORM_FONTS = {
    "cjk": (
        Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # Debian fonts-noto-cjk
        Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),  # Fedora, Arch
    ),
}
BASE_FAMILY = "NotoSans"


@dataclass(frozen=True, slots=True)
class Face:
    """An installed font file for one script."""

    script: str
    family: str
    path: Path


def needs_unicode(texts: Iterable[str]) -> bool:
    """Whether any text has a character outside Latin-1 (the core fonts' range)."""
    return any(any(ord(c) > 0xFF for c in t) for t in texts)


def scripts_of(texts: Iterable[str]) -> set[str]:
    """The scripts (keys of SCRIPT_RANGES) the texts use beyond the base font's. Pure."""
    found: set[str] = set()
    for text in texts:
        for c in text:
            code = ord(c)
            if code < 0x0590:
                continue
            for script, ranges in SCRIPT_RANGES.items():
                if any(lo <= code <= hi for lo, hi in ranges):
                    found.add(script)
                    break
    return found


def strings_of(value: Any) -> list[str]:
    """Every string in a report's data (dataclasses, mappings, sequences), to see which fonts it needs."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return out


def _package_file(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    files = Path(next(iter(spec.submodule_search_locations))) / "files"
    upright = sorted(p for p in files.glob("*.ttf") if "Italic" not in p.name)
    return upright[0] if upright else None


def available_faces() -> dict[str, Face]:
    """The installed font of each script ("base" included), by script."""
    faces: dict[str, Face] = {}
    for script, module in FONT_PACKAGES.items():
        path = _package_file(module)
        if path is not None:
            faces[script] = Face(script, BASE_FAMILY if script == "base" else f"Noto-{script}", path)
    for script, paths in PLATFORM_FONTS.items():
        for path in paths:
            if path.exists():
                faces[script] = Face(script, f"Noto-{script}", path)
                break
    return faces


def install(pdf: Any, texts: Iterable[str]) -> str | None:
    """Give `pdf` the fonts its texts need; returns the family to write with, or None for the core
    fonts (all Latin-1, or no Unicode font installed). Missing scripts render as empty boxes; the
    test suite names them."""
    texts = list(texts)
    if not needs_unicode(texts):
        return None
    faces = available_faces()
    base = faces.get("base")
    if base is None:
        return None
    for style in ("", "B"):  # one weight: instancing the variable font's bold costs seconds per PDF
        pdf.add_font(base.family, style, base.path)
    fallbacks = []
    for script in sorted(scripts_of(texts)):
        face = faces.get(script)
        if face is not None:
            for style in ("", "B"):
                pdf.add_font(face.family, style, face.path)
            fallbacks.append(face.family)
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks, exact_match=False)
    pdf.set_text_shaping(True)
    return base.family
