#!/usr/bin/env python3
"""Execute tsfast's lesson notebooks with the tslab kernel, headlessly, through nbclient.

    /usr/bin/python3 scripts/run_notebooks.py                   # every notebooks/*.ipynb
    /usr/bin/python3 scripts/run_notebooks.py notebooks/00_setup.ipynb [...]
    /usr/bin/python3 scripts/run_notebooks.py --out DIR x.ipynb     # outputs in DIR
    /usr/bin/python3 scripts/run_notebooks.py --beside /elsewhere/x.ipynb  # outputs next to it

Executed copies and HTML renderings go to out/notebooks/ (outside the source tree), or to --out, or
next to each notebook with --beside (as `tsfast run` does); a copy that would overwrite its source
is named x.executed.ipynb. The HTML has no MathJax (no "Loading [MathJax]" bar offline) unless a
markdown cell holds math. The tslab kernel spec is looked up in JUPYTER_PATH (a folder prepared by
`tsfast init` puts its own first) and in this checkout's .jupyter. A failing
cell prints the notebook, the cell's source and the real error: tslab sends an empty error reply
and writes the message only to the cell's stderr, so that is where we read it from.
Ends with a plain `N passed, N failed` line; exits 1 if any notebook failed.
Environment: TSFAST_NOTEBOOK_TIMEOUT (seconds per notebook, default 900),
TSFAST_CELL_TIMEOUT (seconds per cell, default 600), TSFAST_NOTEBOOK_OUT (output folder).
"""
import argparse
import os
import re
import sys
import time
import glob
import signal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("TSFAST_NOTEBOOK_OUT") or os.path.join(ROOT, "out", "notebooks")
os.environ["JUPYTER_PATH"] = os.path.join(ROOT, ".jupyter", "share", "jupyter") + (
    ":" + os.environ["JUPYTER_PATH"] if os.environ.get("JUPYTER_PATH") else "")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: E402
from nbconvert import HTMLExporter  # noqa: E402

NB_TIMEOUT = int(os.environ.get("TSFAST_NOTEBOOK_TIMEOUT", "900"))
CELL_TIMEOUT = int(os.environ.get("TSFAST_CELL_TIMEOUT", "600"))


class NotebookTimeout(Exception):
    pass


def cell_error_text(cell):
    """The error a failed cell shows: error outputs first, then its stderr stream."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}".strip(": "))
            parts.extend(out.get("traceback", [])[-5:])
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append(out.get("text", ""))
    return "\n".join(p for p in parts if p).strip() or "(the kernel gave no message)"


def failed_cell(nb):
    """The first code cell that produced an error output or, for tslab, stderr but no result."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return i, cell
    return None, None


# MathJax, as nbconvert's templates load it: a script tag plus its configuration, between these comments.
MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
# Display math, \( \), or an inline $x$ (a $ not followed by a space, closed on the same line).
MATH = re.compile(r"\$\$|\\\(|\\\[|(?<![\w$])\$[^\s$][^$\n]*?(?<![\s\\])\$(?!\w)")


def has_math(nb):
    return any(c.cell_type == "markdown" and MATH.search(c.source) for c in nb.cells)


def to_html(nb):
    """The notebook as standalone HTML; without MathJax when no markdown cell holds math."""
    html, _ = HTMLExporter().from_notebook_node(nb)
    return html if has_math(nb) else MATHJAX_BLOCK.sub("", html)


def output_paths(path, out_dir):
    """Where the executed copy and the HTML of `path` go: never over the notebook itself."""
    name = os.path.splitext(os.path.basename(path))[0]
    out_nb = os.path.join(out_dir, name + ".ipynb")
    if os.path.abspath(out_nb) == os.path.abspath(path):
        out_nb = os.path.join(out_dir, name + ".executed.ipynb")
    return out_nb, os.path.join(out_dir, name + ".html")


def run_one(path, out_dir=OUT):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="tslab",
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    )
    start = time.time()
    error = None
    failing = None

    def on_alarm(signum, frame):
        raise NotebookTimeout(f"notebook time limit of {NB_TIMEOUT}s exceeded")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(NB_TIMEOUT)
    try:
        client.execute()
    except CellExecutionError as e:
        error = e
    except (CellTimeoutError, NotebookTimeout, DeadKernelError) as e:
        error = e
    finally:
        signal.alarm(0)
    elapsed = time.time() - start
    os.makedirs(out_dir, exist_ok=True)
    out_nb, out_html = output_paths(path, out_dir)
    nbformat.write(nb, out_nb)
    with open(out_html, "w", encoding="utf-8") as f:
        f.write(to_html(nb))
    if error is not None:
        idx, cell = failed_cell(nb)
        if cell is None:
            # Timeouts and dead kernels: the cell being run is the last one with an execution count.
            ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
            cell = ran[-1] if ran else None
            idx = nb.cells.index(cell) if cell is not None else -1
        print(f"FAIL {path} ({elapsed:.0f}s)")
        if cell is not None:
            print(f"--- cell {idx} source:")
            print(cell.source)
            print("--- error:")
            print(cell_error_text(cell))
        if not isinstance(error, CellExecutionError) or cell is None:
            print(f"--- {type(error).__name__}: {str(error).strip()[:2000]}")
        print(f"    executed copy: {out_nb}")
        return False
    print(f"ok   {path} ({elapsed:.0f}s) -> {out_nb} and {out_html}")
    return True


def kernel_spec():
    """The tslab kernel.json nbclient will find, or None."""
    for d in os.environ["JUPYTER_PATH"].split(":"):
        k = os.path.join(d, "kernels", "tslab", "kernel.json")
        if d and os.path.exists(k):
            return k
    return None


def main(argv):
    parser = argparse.ArgumentParser(description="Execute notebooks with the tslab kernel; write executed copies and HTML.")
    parser.add_argument("paths", nargs="*", help="notebooks (default: every notebooks/*.ipynb of this checkout)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", help=f"folder for the outputs (default {OUT})")
    where.add_argument("--beside", action="store_true", help="write the outputs next to each notebook")
    args = parser.parse_args(argv[1:])
    paths = args.paths or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    if not paths:
        print("no notebooks found")
        print("0 passed, 1 failed")
        return 1
    if kernel_spec() is None:
        print(f"the tslab kernel is not registered (no kernels/tslab/kernel.json in JUPYTER_PATH={os.environ['JUPYTER_PATH']}): "
              "run `npm run setup` in the checkout, or `npx tsfast init <folder>`")
        print(f"0 passed, {len(paths)} failed")
        return 1
    passed = failed = 0
    for p in paths:
        if not os.path.exists(p):
            print(f"FAIL {p}: no such notebook")
            failed += 1
            continue
        out_dir = os.path.dirname(os.path.abspath(p)) if args.beside else os.path.abspath(args.out or OUT)
        if run_one(p, out_dir):
            passed += 1
        else:
            failed += 1
    print(f"notebooks: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
