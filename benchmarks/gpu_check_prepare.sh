#!/usr/bin/env bash
# The preparation step of the GPU check (issue 35), on the CPU machine, from the repository root:
#
#   bash benchmarks/gpu_check_prepare.sh [--folder .gpu_check] [--python-version 3.12]
#
# Builds the folder benchmarks/gpu_check.sh needs on the GPU machine (git-ignored .gpu_check/ by
# default; at most 50 MiB, the size is printed): the project's wheel, the wheels the GPU image lacks
# (albumentations, jsonschema, matplotlib and their dependencies, for CPython 3.12 manylinux, at the
# versions installed here), and the demo with its face cache (found with dlib here) as cache.tar.gz,
# checked to serve a run with no face detector and no video decoder. Uses .venv/bin/python (make
# test installs it), else $GPU_CHECK_PYTHON, else python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${GPU_CHECK_PYTHON:-}" ]; then PY="$GPU_CHECK_PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"
else PY=python3; fi
cd "$ROOT"
exec "$PY" "$ROOT/benchmarks/gpu_check.py" prepare "$@"
