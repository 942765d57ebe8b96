"""The ``qdiff`` command: --version, info, demo, warmup."""

from __future__ import annotations

import subprocess
import sys

import pytest

import qdiff
from qdiff import cli
from qdiff.demo import exact_ground_energy, run
from qdiff.warmup import gate_zoo, warmup


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"qdiff {qdiff.__version__}"


def test_info_names_cache_memory_and_c_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "kernel_cache:" in out and "memory:" in out and "GiB available" in out and "c_dtype" in out


def test_demo_reaches_the_ground_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "adjoint vs parameter-shift" in out and "exact ground state" in out
    result = run(verbose=False)
    assert result["exact"] == pytest.approx(exact_ground_energy(6))
    assert 0 <= result["gap"] < 1e-2


def test_demo_exact_energy_closed_form_for_two_sites() -> None:
    # H = -Z0 Z1 - g (X0 + X1): ground energy -sqrt(1 + 4 g^2)
    assert exact_ground_energy(2, 0.7) == pytest.approx(-(1 + 4 * 0.49) ** 0.5, abs=1e-10)


def test_warmup_runs_every_gate_and_reports_steps() -> None:
    zoo = gate_zoo(4)
    names = {op.gate.name for op in zoo.operations}
    assert names >= {spec.name for spec in qdiff.gates.GATES.values() if not spec.identity}
    steps = warmup(verbose=False, sizes=(4,))
    assert len(steps) >= 10 and all(t >= 0 for _, t in steps)


def test_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "qdiff", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"qdiff {qdiff.__version__}"
