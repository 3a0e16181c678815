"""``softmax sample-data DIR``: the packaged samples written where the documented examples read them."""

from __future__ import annotations

import numpy as np
from conftest import ROOT, reference_softmax, run

# The repository's samples (the generator scripts live in scripts/, not here).
REPOSITORY_SAMPLES = sorted(path.name for path in (ROOT / "sample_data").iterdir() if path.is_file())


def test_writes_every_sample_byte_for_byte_and_lists_them(tmp_path):
    done = run("sample-data", tmp_path / "work")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    written = tmp_path / "work" / "sample_data"
    assert sorted(p.name for p in written.iterdir()) == REPOSITORY_SAMPLES
    for name in REPOSITORY_SAMPLES:
        assert (written / name).read_bytes() == (ROOT / "sample_data" / name).read_bytes(), name
    assert done.stdout.splitlines() == [str(written / name) for name in REPOSITORY_SAMPLES]
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["sample_data"]  # no staging folder left


def test_the_readme_first_command_runs_on_the_written_samples(tmp_path):
    assert run("sample-data", ".", cwd=tmp_path).returncode == 0
    done = run("probs", "sample_data/logits.csv", "-f", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line and not line.startswith("#")]
    logits = np.loadtxt(ROOT / "sample_data" / "logits.csv", delimiter=",", skiprows=2)
    got = np.loadtxt(rows[1:], delimiter=",")
    np.testing.assert_allclose(got, reference_softmax(logits), rtol=1e-6)


def test_an_existing_sample_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "sample_data").mkdir()
    (tmp_path / "sample_data" / "mine.txt").write_text("keep")
    done = run("sample-data", tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "softmax sample-data OTHER_DIR" in done.stderr
    assert [p.name for p in (tmp_path / "sample_data").iterdir()] == ["mine.txt"]


def test_a_file_in_place_of_the_folder_is_one_error_line(tmp_path):
    (tmp_path / "taken").write_text("a file")
    done = run("sample-data", tmp_path / "taken")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: cannot create a folder in ")
    assert "Traceback" not in done.stderr
