"""Execute the course notebooks headlessly (``python -m pose_lab.course``).

Runs every notebook in ``notebooks/`` (or the ones named with ``--only``) in a
fresh kernel, in **full mode** unless ``--smoke`` is given, and writes the
executed copies (with outputs) to ``runs/`` so the stored notebooks stay
output-free. Exits non-zero if any notebook fails, after running the rest.

Example::

    python -m pose_lab.course               # full mode, every notebook
    python -m pose_lab.course --smoke --only 00 07
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pose_lab import runtime


def find_notebooks(folder: Path, only=None) -> list[Path]:
    """Notebooks ``NN_*.ipynb`` in ``folder``, in course order, filtered by number prefixes."""
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    books = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [p for p in books if any(p.name.startswith(str(o).zfill(2)) for o in only)]
        if not books:
            raise ValueError(f"--only {only}: no notebook in {folder} starts with those numbers")
    return books


def run_notebook(path: Path, out_dir: Path, smoke: bool, timeout: int) -> float:
    """Execute one notebook; returns seconds taken. Raises on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_smoke = os.environ.get("POSE_LAB_SMOKE")
    os.environ["POSE_LAB_SMOKE"] = "1" if smoke else "0"
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        start = time.perf_counter()
        try:
            client.execute()
        finally:
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = out_dir / (path.name + ".tmp")
            nbformat.write(nb, tmp)
            os.replace(tmp, out_dir / path.name)
        return time.perf_counter() - start
    finally:
        if env_smoke is None:
            os.environ.pop("POSE_LAB_SMOKE", None)
        else:
            os.environ["POSE_LAB_SMOKE"] = env_smoke


def main(argv=None) -> int:
    root = runtime.repo_root() or Path.cwd()
    parser = argparse.ArgumentParser(prog="python -m pose_lab.course", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="smoke mode (small data, few epochs)")
    parser.add_argument("--only", nargs="*", help="notebook numbers to run, e.g. 00 07")
    parser.add_argument("--notebooks", type=Path, default=root / "notebooks")
    parser.add_argument("--out", type=Path, default=root / "runs", help="where executed copies go")
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)

    failures = []
    print(f"{'notebook':40s} {'mode':6s} {'seconds':>8s}  status")
    for path in find_notebooks(args.notebooks, args.only):
        start = time.perf_counter()
        try:
            run_notebook(path, args.out, args.smoke, args.timeout)
            status = "ok"
        except Exception as exc:  # report and continue with the next notebook
            status = f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failures.append(path.name)
        mode = "smoke" if args.smoke else "full"
        print(f"{path.name:40s} {mode:6s} {time.perf_counter() - start:8.1f}  {status}", flush=True)
    print(f"executed copies in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
