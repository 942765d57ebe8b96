"""The README's native-API snippet runs as a script and prints what the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _run_first_snippet(section: str, tmp_path: Path) -> tuple[str, str]:
    """(the section's first python block, what it printed when run as a script); fails if it fails."""
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QDIFF_QUIET": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    return code, out.stdout


def test_native_snippet_prints_what_the_readme_shows(tmp_path: Path) -> None:
    section = _section("A taste of the native API")
    shown = re.search(r"It prints:\n\n```\n(.*?)```", section, re.S).group(1)
    _, stdout = _run_first_snippet(section, tmp_path)
    assert stdout.split() == shown.split()


def test_device_snippet_runs(tmp_path: Path) -> None:
    code, stdout = _run_first_snippet(_section("The PennyLane device `qdiff.qubit`"), tmp_path)
    shown = [line.split("# ", 1)[1].split() for line in code.splitlines() if line.startswith("print(")]
    printed = [line.split() for line in stdout.strip().splitlines()]
    assert len(printed) == len(shown)
    for got, want in zip(printed, shown, strict=True):  # the comments show the output, to print precision
        got_v = [float(v.strip("[]")) for v in got if v.strip("[]")]
        want_v = [float(v.strip("[]")) for v in want if v.strip("[]")]
        assert got_v == pytest.approx(want_v, abs=1e-12)
