#!/bin/sh
# Install Ingest and its pinned dependencies into a new virtualenv. The Dockerfile runs this, and
# so does tests/test_deploy_image.py (into a clean venv in a temporary folder): one set of commands.
#
#   deploy/install.sh VENV SOURCE [EXTRAS]     e.g. deploy/install.sh /opt/ingest /src celery
#
# uv (pinned) resolves the pins in pyproject.toml and installs them from PyPI, or from its cache
# when UV_CACHE_DIR already holds the wheels (the test); UV_NO_CACHE=1 keeps nothing (the image).
set -eu
venv="$1"
source="$2"
extras="${3:-}"
python="${INGEST_PYTHON:-python3.11}"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT

"$python" -m pip --disable-pip-version-check --quiet install --no-cache-dir \
    --target "$tools" "uv==0.13.8"
"$tools/bin/uv" venv --quiet --python "$python" "$venv"
target="$source"
if [ -n "$extras" ]; then
    target="$source[$extras]"
fi
"$tools/bin/uv" pip install --quiet --no-config --python "$venv/bin/python" \
    --compile-bytecode "$target"
"$venv/bin/ingest" --help >/dev/null
