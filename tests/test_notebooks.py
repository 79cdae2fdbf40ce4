"""The planner notebooks run top to bottom without error (each ends with its own checks)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = (
    "01_coverage_quickstart.ipynb",
    "02_siting_elderly_care.ipynb",
    "03_real_osm.ipynb",
    "04_population_raster.ipynb",
    "05_your_own_data.ipynb",
)
# notebook 05 builds a planner's files from this real OpenStreetMap extract (never copied into the repo)
NEEDS_DATA = {"05_your_own_data.ipynb": Path("/work/shared/data/osm/north-bayreuth.osm.gz")}
KERNEL = "python3"
# jupyter_client replaces these command names by sys.executable when it starts a kernel
_PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def _kernel_runs_this_python() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        exe = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    except NoSuchKernel:
        return False
    if exe in _PYTHON_NAMES:
        return True
    try:
        return Path(exe).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Make the "python3" kernel run this interpreter (the venv with geosvc installed)."""
    with pytest.MonkeyPatch.context() as mp:
        if not _kernel_runs_this_python():
            from ipykernel.kernelspec import install

            prefix = tmp_path_factory.mktemp("kernelspec")
            install(user=False, prefix=str(prefix), kernel_name=KERNEL)
            jupyter_path = str(prefix / "share" / "jupyter")
            old = os.environ.get("JUPYTER_PATH")
            mp.setenv("JUPYTER_PATH", jupyter_path + (os.pathsep + old if old else ""))
            assert _kernel_runs_this_python()
        yield


def test_notebooks_are_stored_without_outputs() -> None:
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name: str, kernel_env: None) -> None:
    if name in NEEDS_DATA and not NEEDS_DATA[name].exists():
        pytest.skip(f"{name} needs {NEEDS_DATA[name]}")
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, when a cell fails
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    last = [cell for cell in nb.cells if cell.cell_type == "code"][-1]
    text = "".join(out.get("text", "") for out in last.outputs if out.get("output_type") == "stream")
    assert "all checks passed" in text
