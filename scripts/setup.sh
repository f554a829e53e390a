#!/usr/bin/env bash
# Installs what the course needs, skipping what is already there.
#
#   scripts/setup.sh book   system data set + Python environment for building the website
#   scripts/setup.sh test   the same, plus Chromium for the browser tests
#
# System packages (Debian/Ubuntu): dataset-fashion-mnist and, for tests, chromium and bubblewrap
# (grading runs student code in bubblewrap containers). They are
# installed with apt-get when this runs as root; otherwise the script says what to install.
# Python packages go into .venv (created with Python 3.11) from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-book}"
venv=".venv"
stamp="$venv/.course-installed"

apt_packages=(dataset-fashion-mnist)
if [ "$target" = "test" ]; then
    # bubblewrap: the containers that grading runs student code in
    apt_packages+=(chromium fonts-dejavu-core bubblewrap)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: these system packages are missing: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
        echo "setup: (without dataset-fashion-mnist the course downloads Fashion-MNIST on first use;" >&2
        echo "setup:  without chromium the browser tests are skipped)" >&2
    fi
fi

python_bin=""
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        python_bin="$candidate"
        break
    fi
done
if [ ! -x "$venv/bin/python" ]; then
    if [ -z "$python_bin" ]; then
        echo "setup: Python 3.11 is required (python3.11 or a python3 that is 3.11); none was found." >&2
        exit 1
    fi
    echo "setup: creating $venv with $python_bin"
    "$python_bin" -m venv "$venv"
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python packages into $venv (first time: several minutes)"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e ".[dev]"
    touch "$stamp"
fi
