#!/usr/bin/env bash
# The GPU check (issue 35), one command from the repository root on a lent GPU machine:
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--budget SECONDS] [check options]
#   bash benchmarks/gpu_check.sh --device cpu --smoke [--out DIR]     # anywhere: tiny sizes, no install
#
# 1. installs the project from the folder benchmarks/gpu_check_prepare.sh made on the CPU machine
#    (.gpu_check/, or $GPU_CHECK_FOLDER): its wheel without dependencies (no dlib, PyAV or weight
#    wheels: a prepared cache needs none), then albumentations, jsonschema and matplotlib resolved
#    against what the image has, from that folder only (--no-index: nothing is downloaded);
# 2. unpacks the prepared demo and its face cache into the folder's home/ (HARNESS_CACHE);
# 3. runs benchmarks/gpu_check.py check with what is left of the budget (default 480 s): the
#    paper's setting on the demo, ResNet50 and ViT-S, evaluation speed, GPU-vs-CPU scores, torchrun.
#
# The Python it uses: $GPU_CHECK_PYTHON, else python3 on PATH. --smoke skips steps 1 and 2 (the
# smoke run builds its own tiny cache with the harness already installed there).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${GPU_CHECK_PYTHON:-python3}"
FOLDER="${GPU_CHECK_FOLDER:-$ROOT/.gpu_check}"
STARTED=$(date +%s)
BUDGET=480
OUT="$FOLDER/result"
SMOKE=0
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --smoke) SMOKE=1; PASS+=("$1"); shift ;;
    *) PASS+=("$1"); shift ;;
  esac
done
mkdir -p "$OUT"

install_steps() {
  # Each step stops the install on failure (errexit does not apply inside a function called with ||).
  local wheels="$FOLDER/wheels" project
  echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version)')"
  project=$(ls "$wheels"/deepfake_harness-*.whl 2>/dev/null | head -n 1)
  [ -n "$project" ] || { echo "no project wheel in $wheels: run benchmarks/gpu_check_prepare.sh on the CPU machine and carry .gpu_check"; return 1; }
  "$PY" -m pip install --no-index --no-deps --force-reinstall "$project" || return 1
  # Resolved against the image: what it has and satisfies stays, the rest comes from the folder.
  if ! "$PY" -m pip install --no-index --find-links "$wheels" albumentations jsonschema matplotlib; then
    echo "resolution failed; installing the folder's wheels that the image lacks, without dependencies"
    # shellcheck disable=SC2046  # one distribution name per wheel
    "$PY" -m pip install --no-index --no-deps --find-links "$wheels" \
      $(ls "$wheels" | grep -v '^deepfake_harness-' | sed 's/-.*//') || return 1
  fi
  "$PY" -c 'import albumentations, jsonschema, harness, harness_plugins; print("imports ok")' || return 1
  mkdir -p "$FOLDER/home"
  if [ ! -f "$FOLDER/home/.unpacked" ]; then
    tar -xzf "$FOLDER/cache.tar.gz" -C "$FOLDER/home" || return 1
    touch "$FOLDER/home/.unpacked"
  fi
}

install() {
  # Writes $OUT/install.json; the check then reports a failed install instead of measuring.
  local log="$OUT/install.log" status=ok t0
  t0=$(date +%s)
  export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  install_steps >"$log" 2>&1 || status=failed
  printf '{"status": "%s", "seconds": %d, "log": "%s", "folder": "%s"}\n' \
    "$status" $(( $(date +%s) - t0 )) "$log" "$FOLDER" >"$OUT/install.json"
  [ "$status" = ok ] || tail -n 20 "$log" >&2
}

EXTRA=()
if [ "$SMOKE" = 0 ]; then
  install || true
  EXTRA=(--install "$OUT/install.json" --cache "$FOLDER/home")
fi
LEFT=$(( BUDGET - ( $(date +%s) - STARTED ) ))
cd "$ROOT"
exec "$PY" "$ROOT/benchmarks/gpu_check.py" check --budget "$LEFT" --out "$OUT" ${EXTRA[@]+"${EXTRA[@]}"} ${PASS[@]+"${PASS[@]}"}
