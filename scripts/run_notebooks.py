#!/usr/bin/env python3
"""Execute tsfast's lesson notebooks with the tslab kernel, headlessly, through nbclient.

    /usr/bin/python3 scripts/run_notebooks.py                   # every notebooks/*.ipynb
    /usr/bin/python3 scripts/run_notebooks.py notebooks/00_setup.ipynb [...]

Executed copies and HTML renderings go to out/notebooks/ (outside the source tree). A failing
cell prints the notebook, the cell's source and the real error: tslab sends an empty error reply
and writes the message only to the cell's stderr, so that is where we read it from.
Ends with a plain `N passed, N failed` line; exits 1 if any notebook failed.
Environment: TSFAST_NOTEBOOK_TIMEOUT (seconds per notebook, default 900),
TSFAST_CELL_TIMEOUT (seconds per cell, default 600), TSFAST_NOTEBOOK_OUT (output folder).
"""
import os
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


def run_one(path):
    name = os.path.splitext(os.path.basename(path))[0]
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
    os.makedirs(OUT, exist_ok=True)
    out_nb = os.path.join(OUT, name + ".ipynb")
    nbformat.write(nb, out_nb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    out_html = os.path.join(OUT, name + ".html")
    with open(out_html, "w", encoding="utf-8") as f:
        f.write(html)
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


def main(argv):
    paths = argv[1:] or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    if not paths:
        print("no notebooks found")
        print("0 passed, 1 failed")
        return 1
    kernel_json = os.path.join(ROOT, ".jupyter", "share", "jupyter", "kernels", "tslab", "kernel.json")
    if not os.path.exists(kernel_json):
        print(f"the tslab kernel is not registered ({kernel_json} missing): run `npm run setup` first")
        print(f"0 passed, {len(paths)} failed")
        return 1
    passed = failed = 0
    for p in paths:
        if not os.path.exists(p):
            print(f"FAIL {p}: no such notebook")
            failed += 1
            continue
        if run_one(p):
            passed += 1
        else:
            failed += 1
    print(f"notebooks: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
