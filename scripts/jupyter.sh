#!/usr/bin/env bash
# Open the classic Notebook server on the lessons, with this checkout's tslab kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-run --quiet
export JUPYTER_PATH="$(pwd)/.jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
ROOT_FLAG=(); [ "$(id -u)" = 0 ] && ROOT_FLAG=(--allow-root)   # Jupyter refuses root without it
exec /usr/bin/jupyter notebook --notebook-dir=notebooks --ip=127.0.0.1 --no-browser "${ROOT_FLAG[@]}" "$@"
