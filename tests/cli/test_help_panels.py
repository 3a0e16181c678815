"""``--help`` groups every command's options into panels, and every shared option reaches every command.

The expectations are written out here from the command-line contract (which
command takes which shared option, under which panel), not read from
``softmax_cli.options``, so a group that loses an option or a command that
loses a group fails here.
"""

from __future__ import annotations

import re

import pytest
from conftest import run

INPUT = {"--key": "Input", "--classes": "Input", "--axis": "Input", "--header": "Input", "--index-col": "Input",
         "--void-as": "Input", "--as-logits": "Input"}
# Where the labels are, and the inputs read as probabilities (issue 19).
LABELS = {"--labels": "Input", "--labels-key": "Input"}
FROM_PROBS = {"--from-probs": "Input"}
OUTPUT = {"--format": "Output", "--output": "Output", "--force": "Output", "--precision": "Output"}
BATCH = {"--out-dir": "Output", "--keep-going": "Input"}
THREADS = {"--threads": "Performance"}
SCHEDULER = {"--scheduler": "Performance"}
SOFTMAX = {"--temperature": "Computation", "--masked-rows": "Computation"}
ROW_COMMAND = INPUT | OUTPUT | BATCH | THREADS | SOFTMAX

# command -> {shared option: the panel it is listed under}
SHARED = {
    "probs": ROW_COMMAND | SCHEDULER | FROM_PROBS | {"--log": "Computation", "--exact": "Computation"},
    "jacobian": ROW_COMMAND | {"--log": "Computation"},
    "loss": ROW_COMMAND | SCHEDULER | LABELS | FROM_PROBS | {"--reduction": "Computation", "--weights": "Computation",
                           "--ignore-index": "Computation", "--max-loss": "Gates"},
    "grad": ROW_COMMAND | SCHEDULER | LABELS | FROM_PROBS | {"--reduction": "Computation", "--weights": "Computation",
                           "--ignore-index": "Computation", "--log": "Computation"},
    "topk": ROW_COMMAND | SCHEDULER | LABELS | FROM_PROBS | {"--ignore-index": "Computation", "--min-accuracy": "Gates"},
    "temperature-sweep": INPUT | OUTPUT | SCHEDULER | LABELS | FROM_PROBS | {"--ignore-index": "Computation"},
    "attention": OUTPUT | THREADS | {"--masked-rows": "Computation", "--mask-type": "Input"},
    "compare": INPUT | OUTPUT | THREADS | SCHEDULER | SOFTMAX | LABELS | {"--ignore-index": "Computation",
                                                     "--from-probs": "Input", "--per-row": "Output",
                                                     "--max-kl": "Gates", "--max-kl-quantile": "Gates",
                                                     "--min-agreement": "Gates", "--max-ppl-ratio": "Gates"},
}
# Options a command must not take (the contract leaves them out).
ABSENT = {
    "temperature-sweep": ["--out-dir", "--keep-going", "--threads", "--masked-rows", "--temperature"],
    "jacobian": ["--scheduler"],
    "attention": ["--out-dir", "--keep-going", "--key", "--classes", "--axis", "--temperature", "--header",
                  "--index-col", "--scheduler"],
    "compare": ["--out-dir", "--keep-going"],  # two inputs make one comparison
}
PANEL_ORDER = ["Arguments", "Input", "Computation", "Output", "Gates", "Performance", "Options"]


def help_sections(text: str) -> dict[str, list[str]]:
    """Section title -> the option names listed in it, from Click's plain help layout."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        title = re.match(r"^([A-Z][A-Za-z ]*):$", line)
        if title:
            current = sections.setdefault(title.group(1), [])
            continue
        names = re.match(r"^  (-[\w-]+(?:, -[\w-]+)*)", line)
        if current is not None and names:
            current.extend(names.group(1).split(", "))
    return sections


@pytest.mark.parametrize("command", sorted(SHARED))
def test_help_lists_each_option_under_its_panel(cli, command):
    completed = cli(command, "--help")
    assert completed.returncode == 0, completed.stderr
    sections = help_sections(completed.stdout)
    expected_panels = {panel for panel in SHARED[command].values()}
    assert expected_panels <= set(sections), sections.keys()
    for option, panel in SHARED[command].items():
        assert option in sections[panel], f"{command}: {option} not under {panel}: {sections}"
    listed = [name for names in sections.values() for name in names]
    for option in ABSENT.get(command, []):
        assert option not in listed, f"{command} takes {option}"
    assert len(listed) == len(set(listed)), f"{command} lists an option twice"
    assert sections["Options"] == ["-h", "--help"]  # every other option sits in a named panel


@pytest.mark.parametrize("command", sorted(SHARED))
def test_panels_come_in_the_documented_order(cli, command):
    text = cli(command, "--help").stdout
    titles = [line[:-1] for line in text.splitlines() if re.match(r"^[A-Z][A-Za-z ]*:$", line)]
    assert titles == sorted(titles, key=PANEL_ORDER.index)


def test_masked_rows_default_differs_for_attention(cli):
    def masked_rows_default(command: str) -> str:
        help_text = " ".join(cli(command, "--help").stdout.split())
        return re.search(r"--masked-rows <error\|zero\|nan> .*?\[default: (\w+)\]", help_text).group(1)

    assert masked_rows_default("attention") == "zero"
    assert {masked_rows_default(c) for c in ("probs", "loss", "grad", "jacobian", "topk")} == {"error"}


def test_top_level_help_keeps_each_summary_whole():
    completed = run("--help")  # the installed console script, as a person runs it
    lines = completed.stdout.splitlines()
    start = lines.index("Commands:") + 1
    summaries: dict[str, str] = {}
    for line in lines[start:]:
        entry = re.match(r"^  ([a-z][a-z-]*)\s+(.*)$", line)
        if entry:
            name = entry.group(1)
            summaries[name] = entry.group(2)
        elif not line.strip():
            break  # the typical pipelines follow the commands
        else:
            summaries[name] += " " + line.strip()
    assert set(summaries) == set(SHARED) | {"sample-data"}  # sample-data takes no shared option
    for name, summary in summaries.items():
        assert summary.endswith(".") and not summary.endswith("..."), (name, summary)
    assert summaries["attention"] == ("Scaled dot-product attention, as "
                                      "torch.nn.functional.scaled_dot_product_attention.")
    assert summaries["jacobian"] == "Per-row Jacobian of softmax, diag(s) - s s^T, of shape (..., C, C)."


def test_options_of_every_group_are_parsed(cli):
    # One option from each group changes the output as the contract says: --axis (input),
    # --precision (output), --masked-rows (softmax), --threads (performance).
    completed = cli("probs", "1 -inf; 2 -inf", "--axis", "0", "--precision", "2", "--masked-rows", "nan",
                    "--threads", "1", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    # Column 0: softmax of (1, 2); column 1 is all -inf, so NaN.
    assert completed.stdout.split() == ["0.27,nan", "0.73,nan"]


@pytest.mark.parametrize("command", sorted(SHARED))
def test_examples_are_whole_command_lines(cli, command):
    lines = cli(command, "--help").stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:")) + 1
    examples = []
    for line in lines[start:]:
        if not line.strip():
            break
        if examples and examples[-1].endswith(" \\"):  # an example continued at a space (helpformat.py)
            examples[-1] = examples[-1][:-1] + line.strip()
        else:
            examples.append(line.strip())
    assert examples and all(example.startswith(f"softmax {command} ") for example in examples), examples
