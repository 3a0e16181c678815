"""Where a bad value is travels with the error as fields and is formatted once, outermost first."""

from __future__ import annotations

from softmax_cli.errors import InputError


def test_every_known_field_in_order():
    error = InputError("NaN in logits", where="row 1, column 2", member="logits.npy", line=3, column=4)
    error.located("runs/a, b.npz").located("--labels")
    assert error.sources == ["--labels", "runs/a, b.npz"] and error.source == "--labels"
    assert str(error) == "NaN in logits (--labels, runs/a, b.npz, member 'logits.npy', row 1, column 2; line 3, column 4)"


def test_a_holder_already_named_is_not_named_again():
    error = InputError("no such file", where="x.npy").located("x.npy")
    assert str(error) == "no such file (x.npy)"
    named = InputError("bad", source="a, b.npy").located("a, b.npy")
    assert named.sources == ["a, b.npy"] and str(named) == "bad (a, b.npy)"


def test_a_text_position_alone_and_no_location_at_all():
    assert str(InputError("'x' is not a number", line=2, column=1).located("t.csv")) == \
        "'x' is not a number (t.csv, line 2, column 1)"
    assert str(InputError("fields", line=7)) == "fields (line 7)"
    assert str(InputError("out of memory")) == "out of memory"
