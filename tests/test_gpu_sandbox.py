"""The GPU inside the sandbox: a confined notebook computes on it, its memory is capped per
notebook, and the fork server never starts CUDA (a CUDA started before a fork breaks every child).

The first two need a CUDA GPU and skip without one; the last runs everywhere.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

from labkit.sandbox.session import ForkServerClient, NotebookSession
from labkit.grading.standins import RemoteEnv
from labkit.sandbox.confine import Limits

cuda = pytest.mark.cuda
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _run(tmp_path: Path, cells: list[str], names: list[str], limits: Limits) -> tuple[dict, dict]:
    """Run ``cells`` as a confined notebook; return the named variables and the confinement."""
    notebook = tmp_path / "gpu.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells]), notebook)
    server = ForkServerClient()
    session = NotebookSession(server, notebook, notebook.name, limits, [tmp_path])
    try:
        session.start()
        env = RemoteEnv(session)
        values = {name: env.get(name) for name in names}
    finally:
        session.close()
        server.close()
    assert not server.cuda_initialized
    return values, session.report.confinement


@cuda
@needs_gpu
def test_a_confined_notebook_computes_on_the_gpu(tmp_path):
    values, confinement = _run(tmp_path, [
        "import torch\nx = torch.arange(10.0, device='cuda')\ntotal = float(x.sum())\n"
        "device = x.device.type"], ["total", "device"], Limits())
    assert values == {"total": 45.0, "device": "cuda"}
    assert confinement["namespaces"] and confinement["new_root"]
    assert any(path.startswith("/dev/nvidia") for path in confinement["gpu_devices"])


@cuda
@needs_gpu
def test_gpu_memory_beyond_the_notebooks_cap_fails_in_its_own_cell(tmp_path):
    """With a 1 GiB cap, a 4 GiB allocation fails where it is made; the GPU stays usable."""
    values, _ = _run(tmp_path, [
        "import torch\ntry:\n    hog = torch.empty(4 << 30, dtype=torch.uint8, device='cuda')\n"
        "    outcome = 'allocated'\nexcept torch.OutOfMemoryError:\n    outcome = 'refused'",
        "after = float(torch.ones(1000, device='cuda').sum())",
    ], ["outcome", "after"], Limits(memory_bytes=1 << 30))
    assert values == {"outcome": "refused", "after": 1000.0}


def test_the_fork_server_has_not_started_cuda(tmp_path):
    """The server reports, once it has imported everything it preloads, whether CUDA started in
    it (``ForkServerClient.cuda_initialized``, asserted in ``_run``); a notebook forked from it then
    finds CUDA as the machine has it."""
    values, _ = _run(tmp_path, ["import torch\navailable = torch.cuda.is_available()"],
                     ["available"], Limits())
    assert values["available"] == torch.cuda.is_available()
