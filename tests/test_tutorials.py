"""The tutorials run (quick mode, in-process) and reach their results, not just finish.

Each tutorial's ``main(quick=True)`` returns its key numbers; the plots go to a temporary folder
through ``QDIFF_TUTORIAL_OUT``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SCRIPTS = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))


def load(name: str) -> ModuleType:
    """Import ``tutorials/<name>`` by path (the file names start with digits)."""
    if str(TUTORIALS) not in sys.path:
        sys.path.insert(0, str(TUTORIALS))
    spec = importlib.util.spec_from_file_location(f"qdiff_tutorial_{name[:2]}", TUTORIALS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QDIFF_TUTORIAL_OUT", str(tmp_path))
    return tmp_path


def check_plot(result: dict, out_dir: Path, name: str) -> None:
    path = Path(result["plot"])
    assert path == out_dir / name
    assert path.is_file() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_all_tutorials_listed_and_in_percent_format() -> None:
    assert SCRIPTS == ["01_quickstart.py", "02_vqe_h2.py", "03_qaoa_maxcut.py", "04_hybrid_classifier.py",
                       "05_jax_end_to_end.py", "06_scaling.py"]
    readme = (TUTORIALS / "README.md").read_text()
    for script in SCRIPTS:
        text = (TUTORIALS / script).read_text()
        assert text.startswith("# %% [markdown]"), script
        assert text.count("# %%") >= 6, script
        assert "def main(quick: bool = False) -> dict:" in text, script
        assert 'if __name__ == "__main__":\n    main()' in text, script
        assert script in readme, script


def test_common_quick_flag_and_output_dir(out_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = load("_common.py")
    monkeypatch.setattr(sys, "argv", ["tutorial.py"])
    monkeypatch.delenv("QDIFF_TUTORIAL_QUICK", raising=False)
    assert not common.is_quick() and common.is_quick(True)
    monkeypatch.setenv("QDIFF_TUTORIAL_QUICK", "1")
    assert common.is_quick()
    monkeypatch.delenv("QDIFF_TUTORIAL_QUICK")
    monkeypatch.setattr(sys, "argv", ["tutorial.py", "--quick"])
    assert common.is_quick()
    assert common.output_dir() == out_dir
    monkeypatch.setenv("QDIFF_TUTORIAL_OUT", str(out_dir / "nested" / "plots"))
    assert common.output_dir().is_dir()
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"


def test_01_quickstart(out_dir: Path) -> None:
    r = load("01_quickstart.py").main(quick=True)
    assert r["adjoint_vs_ps"] < 1e-8  # adjoint and parameter-shift agree (sweep and single point)
    assert r["adjoint_vs_fd"] < 1e-6
    assert r["pennylane_vs_native"] < 1e-8  # qdiff.qubit gives the native numbers
    np.testing.assert_allclose(r["grad_adjoint"], r["grad_parameter_shift"], atol=1e-10)
    losses = r["losses"]
    assert losses[-1] < losses[0] - 0.9 and np.all(np.diff(losses) < 1e-12)  # gradient descent descends
    assert r["final_energy"] - r["exact_energy"] < 0.03
    check_plot(r, out_dir, "01_quickstart.png")


def test_02_vqe_h2(out_dir: Path) -> None:
    pytest.importorskip("scipy")
    r = load("02_vqe_h2.py").main(quick=True)
    assert abs(r["exact_energy"] - (-1.13727)) < 1e-4  # FCI energy of H2/STO-3G at 0.7414 A
    assert 0 <= r["error"] < 1.6e-3  # chemical accuracy (variational: never below the exact energy)
    assert r["error"] < 1e-6
    assert r["native_difference"] < 1e-10
    check_plot(r, out_dir, "02_vqe_h2.png")


def test_03_qaoa_maxcut(out_dir: Path) -> None:
    pytest.importorskip("networkx")
    r = load("03_qaoa_maxcut.py").main(quick=True)
    assert r["ratio"] >= 0.85
    assert r["cut_found"] == r["max_cut"]  # brute force agrees with the best sampled cut
    bits, edges = r["bits"], r["edges"]
    assert sum(bits[i] != bits[j] for i, j in edges) == r["cut_found"]
    assert r["p_optimal"] > 0.3
    assert r["probs_check"] < 1e-10
    check_plot(r, out_dir, "03_qaoa_maxcut.png")


def test_04_hybrid_classifier(out_dir: Path) -> None:
    pytest.importorskip("torch")
    r = load("04_hybrid_classifier.py").main(quick=True)
    assert r["test_accuracy"] >= 0.9
    assert r["history"]["loss"][-1] < r["history"]["loss"][0]
    check_plot(r, out_dir, "04_hybrid_classifier.png")


def test_05_jax_end_to_end(out_dir: Path) -> None:
    jax = pytest.importorskip("jax")
    x64 = jax.config.jax_enable_x64
    try:
        r = load("05_jax_end_to_end.py").main(quick=True)  # switches on jax_enable_x64, globally
    finally:
        jax.config.update("jax_enable_x64", x64)
    assert r["native_vs_device"] < 1e-8  # the two quantum pieces agree, values and gradients
    assert r["grad_vs_fd"] < 1e-5  # end-to-end jax.grad matches finite differences of the whole program
    assert r["final_loss"] < 0.1 * r["initial_loss"]
    for name, (fitted, true) in r["fitted_vs_true"].items():
        assert abs(fitted - true) < 0.1 * abs(true) + 0.02, name
    check_plot(r, out_dir, "05_jax_end_to_end.png")


def test_06_scaling(out_dir: Path) -> None:
    r = load("06_scaling.py").main(quick=True)
    times = r["times"]["numpy"]
    assert sorted(times) == [4, 6, 8, 10, 12]
    assert all(t > 0 for t in times.values())
    assert r["ps_vs_adjoint"] < 1e-8
    if r["gpu"]:
        assert sorted(r["times"]["cupy"]) == sorted(times) and r["gpu_vs_cpu"] < 1e-8
    else:
        assert r["times"]["cupy"] == {} and "CuPy" in r["gpu_status"]
    check_plot(r, out_dir, "06_scaling.png")


def test_runs_as_a_script_in_quick_mode_from_the_environment(out_dir: Path) -> None:
    env = dict(os.environ, QDIFF_TUTORIAL_QUICK="1")
    proc = subprocess.run([sys.executable, str(TUTORIALS / "06_scaling.py")], env=env, capture_output=True,
                          text=True, timeout=120, cwd=out_dir)
    assert proc.returncode == 0, proc.stderr
    assert "(quick mode)" in proc.stdout and "n = 12" in proc.stdout and "n = 14" not in proc.stdout
    assert (out_dir / "06_scaling.png").is_file()


def test_missing_matplotlib_is_one_clear_line() -> None:
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; "
            f"runpy.run_path({str(TUTORIALS / '01_quickstart.py')!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QDIFF_TUTORIAL_QUICK": "1"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "the qdiff tutorials draw their plots with matplotlib, which is not installed: "
        "pip install 'qdiff[tutorials]' (or pip install matplotlib)"
    ]
