"""softmax topk --ties through the real entry point."""

from __future__ import annotations

import json

from conftest import run


def test_ties_high_ranks_the_higher_index_first():
    done = run("topk", "3 1 3 2 3", "--top", "2", "--ties", "high", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["indices"] == [4, 2]
    low = run("topk", "3 1 3 2 3", "--top", "2", "-f", "json")
    assert json.loads(low.stdout)["indices"] == [0, 2]


def test_ties_refuses_an_unknown_rule_in_one_line():
    done = run("topk", "3 1 3", "--ties", "sklearn")
    assert done.returncode == 2
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
