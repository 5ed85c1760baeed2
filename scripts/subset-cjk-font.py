#!/usr/bin/env python3
"""Regenerate assets/fonts/NotoSansSC-dustwatch.otf, the chart font.

A subset of Noto Sans CJK SC Regular (SIL OFL 1.1): ASCII, Latin-1, the punctuation and units the
charts draw, all of GB 2312, and every other character found in the shipped scenarios, registries,
dashboards and the page strings, so a registered site name draws as written.

Needs fonttools (`pip install fonttools`) and Debian's fonts-noto-cjk. Run from the repository root:
    python3 scripts/subset-cjk-font.py
"""
import pathlib
import subprocess
import sys

SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FACE_SC = 2  # the collection's faces: JP, KR, SC, TC, HK, then the Mono ones
OUT = pathlib.Path("assets/fonts/NotoSansSC-dustwatch.otf")
SCANNED = ["sensors-sim/scenarios", "dashboards", "rules", "src/web/i18n.rs", "registry.example.toml"]


def gb2312():
    chars = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def scanned():
    chars = set()
    for entry in SCANNED:
        p = pathlib.Path(entry)
        files = [p] if p.is_file() else sorted(p.rglob("*"))
        for f in files:
            if f.is_file():
                chars.update(f.read_text(encoding="utf-8", errors="ignore"))
    return {c for c in chars if ord(c) > 0x7F}


def main():
    chars = set(map(chr, range(0x20, 0x7F))) | set(map(chr, range(0xA0, 0x100)))
    chars |= set("–—‘’“”…·•‰′″※℃°±×÷µ³²→←↑↓▲▼△▽■□●○◆◇★☆€￥、。，．：；！？（）《》「」【】〔〕～")
    chars |= gb2312() | scanned()
    unicodes = ",".join(f"U+{ord(c):04X}" for c in sorted(chars))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "fontTools.subset", SOURCE,
            f"--font-number={FACE_SC}",
            f"--unicodes={unicodes}",
            f"--output-file={OUT}",
            "--layout-features=kern,liga,locl,vert",
            "--name-IDs=*",
            "--no-hinting",
        ],
        check=True,
    )
    print(f"{OUT}: {len(chars)} characters, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
