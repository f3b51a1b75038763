"""Write ``fiftyone_genre/sources/assets/features_only.mp4``: the video every features-only sample shows.

YouTube-8M records without a local video become samples whose ``filepath`` is
this one shared clip, so the App's grid and modal show "features only / no
video file" instead of a broken tile. The file is committed (3-4 KB); this
script says how it was made and remakes it:

    .venv/bin/python scripts/make_placeholder.py

One 320x180 frame drawn with Pillow (DejaVu Sans), encoded by ffmpeg as
H.264 yuv420p, 4 fps, 1 s, no audio, ``+faststart`` (plays in every browser).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "fiftyone_genre" / "sources" / "assets" / "features_only.mp4"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def frame(path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (320, 180), (48, 52, 60))
    draw = ImageDraw.Draw(image)
    for text, size, y, colour in (("features only", 26, 70, (240, 240, 240)), ("no video file", 17, 106, (180, 184, 192))):
        font = ImageFont.truetype(FONT, size)
        width = draw.textlength(text, font=font)
        draw.text(((320 - width) / 2, y - size / 2), text, font=font, fill=colour)
    image.save(path)


def main() -> int:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("needs the ffmpeg binary on PATH", file=sys.stderr)
        return 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "frame.png"
        frame(png)
        subprocess.run(
            [ffmpeg, "-nostdin", "-y", "-v", "error", "-loop", "1", "-framerate", "4", "-i", str(png), "-t", "1",
             "-c:v", "libx264", "-preset", "veryslow", "-tune", "stillimage", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact", str(OUT)],
            check=True,
        )  # fmt: skip
    print(f"{OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
