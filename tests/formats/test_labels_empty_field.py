"""A labels file of one line with an empty field (a trailing comma) is refused as such, not as class names.

``0,1,`` named its numbers class names: "the labels are class names ('0', ...)
but the logits' classes have no names", a misleading refusal. The empty field
is what is wrong, and the line says so.
"""

from __future__ import annotations

from conftest import assert_one_error_line, run


def test_a_trailing_separator_in_a_labels_line_is_named_as_an_empty_field(tmp_path):
    (tmp_path / "logits.txt").write_text("1 2 3\n4 5 6\n")
    (tmp_path / "labels.csv").write_text("0,1,\n")
    line = assert_one_error_line(run("loss", tmp_path / "logits.txt", "--labels", tmp_path / "labels.csv"))
    assert "empty field" in line and "class names" not in line and "labels.csv" in line
