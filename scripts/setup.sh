#!/usr/bin/env bash
# One-command setup for tsfast, then the main job (run lesson 1 headlessly to an HTML report).
# Idempotent: each step is skipped when already done.
#   bash scripts/setup.sh            full setup + run notebooks/01_intro.ipynb
#   bash scripts/setup.sh --no-run   setup only (what `npm test` uses)
#   --quiet                          print only what changes
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=1; QUIET=0
for a in "$@"; do
  case "$a" in
    --no-run) RUN=0 ;;
    --quiet) QUIET=1 ;;
    *) echo "setup: unknown option '$a' (use --no-run, --quiet)" >&2; exit 2 ;;
  esac
done
say() { [ "$QUIET" = 1 ] || echo "setup: $*"; }

# 1. Debian packages: Jupyter + nbclient, the tslab kernel's Python side, data, Chromium for the
#    render check, the native engine's toolchain and libraries, PyTorch as a numerical reference.
#    (mate-backgrounds: the photographs behind the emoji scenes, datasets/README.md.)
#    (r-base-core, r-cran-dslabs: the MovieLens ratings, converted once with Rscript.)
APT_PKGS="jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-client python3-ipython \
dataset-fashion-mnist mate-backgrounds chromium fonts-dejavu-core g++ make python3 libdnnl-dev libopenblas-dev libjpeg62-turbo-dev \
python3-torch python3-torchvision python3-pil r-base-core r-cran-dslabs"
missing=()
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing: ${missing[*]}" >&2
    echo "setup: run this, then run setup again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# 2. npm packages (the install script also compiles the native engine; its failure is not fatal).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "node_modules up to date"
fi

# 3. Build the library (dist/) and link it as the package "tsfast" for notebooks.
say "building (tsc)"
npm run --silent build

# 4. A tslab kernel for this checkout only: absolute binary, Debian's Python, prefix inside the checkout.
KDIR="$ROOT/.jupyter/share/jupyter/kernels/tslab"
if [ ! -f "$KDIR/kernel.json" ] || ! grep -q "$ROOT/node_modules/tslab/bin/tslab" "$KDIR/kernel.json"; then
  echo "setup: registering the tslab kernel in $ROOT/.jupyter"
  node node_modules/tslab/bin/tslab install --python=/usr/bin/python3 \
    --binary="$ROOT/node_modules/tslab/bin/tslab" --prefix="$ROOT/.jupyter" >/dev/null
else
  say "tslab kernel registered"
fi

# 5. Offline datasets (Fashion-MNIST folders, MNIST digits, emoji categories, emoji scenes) into $TSFAST_HOME.
if [ -f dist/scripts/prepare-datasets.js ]; then
  if [ "$QUIET" = 1 ]; then node dist/scripts/prepare-datasets.js --quiet; else node dist/scripts/prepare-datasets.js; fi
fi

# 6. The main job: lesson 1, executed headlessly, as .ipynb and .html.
if [ "$RUN" = 1 ]; then
  nb=notebooks/01_intro.ipynb; [ -f "$nb" ] || nb=notebooks/00_setup.ipynb
  /usr/bin/python3 scripts/run_notebooks.py "$nb"
fi
