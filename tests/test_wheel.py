"""Packaging: the wheel holds every module and the assets, and renders once installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = {"pianossm/assets/default_model.pt", "pianossm/assets/align_crnn.pt",
          "pianossm/assets/demo.mid"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the tree (no build isolation, no index)."""
    try:
        import setuptools  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.skip("setuptools is not installed")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copy(ROOT / "pyproject.toml", src.parent / "pyproject.toml")
    shutil.copy(ROOT / "README.md", src.parent / "README.md")
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "*.nbi", "*.nbc"))
    out = tmp / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w", str(out),
                           str(tmp)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (found,) = out.glob("pianossm-*.whl")
    return found


def test_wheel_file_list(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT / "src").as_posix()
               for p in (ROOT / "src" / "pianossm").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert ASSETS <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    info = {n.split("/", 1)[1] for n in names if ".dist-info/" in n}
    assert {"METADATA", "WHEEL", "entry_points.txt", "RECORD"} <= info
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pianossm = pianossm.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_wheel_renders_the_demo(wheel: Path, tmp_path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(target), str(wheel)], check=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(target))
    run = tmp_path / "run"
    run.mkdir()
    code = "import pianossm, sys; print(pianossm.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=run, env=env, check=True,
                           capture_output=True, text=True).stdout
    assert where.startswith(str(target))  # the installed copy, not the source tree
    subprocess.run([sys.executable, "-m", "pianossm", "render", "-o", "demo.wav", "-q"],
                   cwd=run, env=env, check=True, timeout=300)
    ref = tmp_path / "ref.wav"
    from pianossm.cli import main

    assert main(["render", "-o", str(ref), "-q"]) == 0
    assert (run / "demo.wav").read_bytes() == ref.read_bytes()


def test_missing_fluidsynth_is_one_clear_error(monkeypatch, tmp_path) -> None:
    import pianossm
    from pianossm import fluid

    monkeypatch.setattr(fluid.shutil, "which", lambda name: None)
    with pytest.raises(pianossm.PianoSSMError, match="only building datasets needs it"):
        fluid.render_fluidsynth(tmp_path / "x.mid", 16000)
