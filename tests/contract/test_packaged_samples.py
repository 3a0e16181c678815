"""The wheel and the sdist hold every sample the documented examples read (``softmax sample-data`` writes them out)
and the man page.

Built with setuptools' own build backend, as pip and ``python -m build`` do, in a
copy of the project (a build leaves ``build/`` and ``*.egg-info`` behind).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from conftest import ROOT

SAMPLES = sorted(path.name for path in (ROOT / "sample_data").iterdir() if path.is_file())
BUILD = """
import sys
from setuptools import build_meta
print(getattr(build_meta, sys.argv[1])(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    pytest.importorskip("setuptools")
    copy = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "sample_data", copy / "sample_data")
    (copy / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "softmax.1", copy / "docs" / "softmax.1")
    shutil.copytree(ROOT / "softmax_cli", copy / "softmax_cli", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def build(project, hook: str):
    out = project / "dist"
    done = subprocess.run([sys.executable, "-c", BUILD, hook, str(out)], cwd=project, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_holds_every_sample(project):
    with zipfile.ZipFile(build(project, "build_wheel")) as wheel:
        names = wheel.namelist()
        packaged = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("softmax_cli/sample_data/"))
        assert packaged == SAMPLES
        for name in SAMPLES:
            assert wheel.read(f"softmax_cli/sample_data/{name}") == (ROOT / "sample_data" / name).read_bytes()
        man = [n for n in names if n.endswith(".data/data/share/man/man1/softmax.1")]
        assert len(man) == 1 and wheel.read(man[0]) == (ROOT / "docs" / "softmax.1").read_bytes()


def test_the_sdist_holds_every_sample_as_a_file(project):
    with tarfile.open(build(project, "build_sdist")) as sdist:
        members = {m.name.partition("/")[2]: m for m in sdist.getmembers()}
        for name in SAMPLES:
            member = members[f"softmax_cli/sample_data/{name}"]
            assert member.isfile(), name  # a file, not the repository's link: the sdist unpacks anywhere
            assert sdist.extractfile(member).read() == (ROOT / "sample_data" / name).read_bytes()
        assert members["docs/softmax.1"].isfile()
