"""Packaging: every qdiff subpackage and data file is listed in pyproject.toml (a missing one breaks
non-editable installs only, which the editable test environment would never notice)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_and_data_file_is_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "qdiff").rglob("__init__.py")}
    on_disk |= {"qdiff.devices"}  # devices/ is installed as qdiff.devices
    assert on_disk <= listed, f"missing from pyproject packages: {sorted(on_disk - listed)}"
    data = config["package-data"]
    for suffix in ("cu", "toml"):
        for f in list((ROOT / "qdiff").rglob(f"*.{suffix}")) + list((ROOT / "devices").rglob(f"*.{suffix}")):
            rel = f.parent.relative_to(ROOT).parts
            package = "qdiff.devices" if rel[0] == "devices" else ".".join(rel)
            assert f"*.{suffix}" in data.get(package, []), f"{f.relative_to(ROOT)} is not package data"
