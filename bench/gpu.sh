#!/usr/bin/env bash
# One command for a lent GPU machine (docs/throughput.md, "GPU numbers in one shot"):
#   bench/gpu.sh [--dry-run] [python -m bench.gpu options]
# Installs the wheels that `make gpu-wheels` put in .whl/ into a temporary site dir (the machine has no network
# and lacks diffusers and PyAV), points LIPSYNC_SHARED_DIR at the demo clip staged in .whl/shared when ../shared
# is not there, then runs python -m bench.gpu writing results to $OUT (or bench/out). The log goes to run.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${LIPSYNC_GPU_WHEELS:-.whl}
[ -d "$WHEELS" ] && WHEELS=$(cd "$WHEELS" && pwd)
OUT_DIR=${OUT:-bench/out}
mkdir -p "$OUT_DIR"
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  SITE=$(mktemp -d "${TMPDIR:-/tmp}/lipsync-gpu-site.XXXXXX")
  trap 'rm -rf "$SITE"' EXIT
  # The wheels are for the lent machine's CPython 3.12; a dry run on another Python skips the ones built for
  # one version only (it has those packages already) and says so.
  PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  carried=()
  for whl in "$WHEELS"/*.whl; do
    name=$(basename "$whl")
    if [[ "$name" =~ -(cp3[0-9]+)-cp3[0-9]+-[^-]+\.whl$ ]] && [ "${BASH_REMATCH[1]}" != "$PYTAG" ]; then
      echo "skipping $name: built for ${BASH_REMATCH[1]}, this Python is $PYTAG" >&2
      continue
    fi
    carried+=("$whl")
  done
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "${carried[@]}"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "installed ${#carried[@]} carried wheel(s) into $SITE" >&2
fi
if [ -z "${LIPSYNC_SHARED_DIR:-}" ] && [ ! -d ../shared ] && [ -d "$WHEELS/shared" ]; then
  export LIPSYNC_SHARED_DIR="$WHEELS/shared"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
set -o pipefail
"$PY" -m bench.gpu --out "$OUT_DIR" "$@" 2>&1 | tee "$OUT_DIR/run.log"
