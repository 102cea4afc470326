"""Running notebooks headless for the tests: nbclient + ipykernel, in this interpreter (the venv's
python), with the project on PYTHONPATH and the parameters of a test injected papermill-style (a
cell after the one tagged "parameters")."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "tlcore-tests"


def kernel_spec(folder: Path) -> Path:
    """A Jupyter data folder holding a kernel spec that starts this interpreter (the installed
    `python3` spec would start whatever `python` is first on PATH)."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tlcore tests", "language": "python"}))
    return folder


def inject(nb, parameters: dict):
    """The notebook with a cell setting `parameters` right after its "parameters" cell."""
    import nbformat

    where = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    assert where is not None, "the notebook has no cell tagged 'parameters'"
    source = "# injected by the tests\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(where + 1, cell)
    return nb


def execute(path: Path, parameters: dict, cwd: Path, env: dict | None = None, timeout: int = 900):
    """Execute the notebook at `path` in a fresh kernel with `parameters`; returns the executed
    notebook (an error in a cell raises nbclient's CellExecutionError)."""
    import nbformat
    from nbclient import NotebookClient

    nb = inject(nbformat.read(path, as_version=4), parameters)
    saved = dict(os.environ)
    os.environ.update({"JUPYTER_PATH": str(kernel_spec(cwd / ".jupyter")),
                       "PYTHONPATH": os.pathsep.join([str(ROOT), saved.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                       "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    try:
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def outputs(nb, mime: str = "text/html") -> list[str]:
    """Every output of `mime` type (display data and results) in cell order."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            if mime in data:
                found.append(data[mime] if isinstance(data[mime], str) else "".join(data[mime]))
    return found
