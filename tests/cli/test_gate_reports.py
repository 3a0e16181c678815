"""Gate verdicts for CI: the JSON's provenance and ``gates``, and ``--report github|junit=PATH|markdown=PATH``.

The JUnit file is validated against a JUnit XML schema shipped beside this file (tests/cli/junit.xsd, the
structure Jenkins and GitLab read) with xmlschema and read back by junitparser; the GitHub annotations are
unescaped as the Actions runner unescapes them; the JSON is validated against the schema docs/ci.md documents.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_error_line, run

LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0], [1.0, 0.0, 3.0], [0.2, 0.1, 0.0]])
LABELS = np.array([0, 1, 1, 2])
SCHEMA_XSD = Path(__file__).with_name("junit.xsd")


def nll(z, y):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(y)), y]


LOSS = nll(LOGITS, LABELS).mean()  # 1.2464: --max-loss 1 fails, --max-loss 2 passes
TOP2 = np.mean((np.argsort(-LOGITS, axis=-1, kind="stable")[:, :2] == LABELS[:, None]).any(-1))


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "z.npy", LOGITS)
    np.save(tmp_path / "y.npy", LABELS)
    np.save(tmp_path / "cand.npy", LOGITS + np.array([0.0, 0.3, -0.3]))
    return tmp_path


def documented_schema() -> dict:
    """The JSON schema in docs/ci.md: the ```json block under the heading 'The JSON schema'."""
    text = (ROOT / "docs" / "ci.md").read_text()
    section = text.split("## The JSON schema", 1)[1]
    return json.loads(section.split("```json", 1)[1].split("```", 1)[0])


# ---------------------------------------------------------------- JSON: provenance and gates

@pytest.mark.parametrize("bound,passed,status", [(2.0, True, 0), (1.0, False, 1)])
def test_loss_json_records_the_gate_whatever_its_verdict(files, bound, passed, status):
    completed = run("loss", "z.npy", "--labels", "y.npy", "--max-loss", bound, "-f", "json", cwd=files)
    assert completed.returncode == status, completed.stderr
    out = json.loads(completed.stdout)  # a failed gate still writes the whole result
    assert out["loss"] == pytest.approx(LOSS, rel=1e-12)
    assert out["gates"] == [{"option": "--max-loss", "figure": "loss", "comparison": "<=", "threshold": bound,
                             "measured": out["loss"], "passed": passed}]
    assert out["command"] == "loss"
    assert out["inputs"] == [
        {"role": "logits", "path": "z.npy", "shape": [4, 3], "dtype": "float64", "key": None},
        {"role": "labels", "path": "y.npy", "shape": [4], "dtype": "int64", "key": None}]
    from softmax_cli import __version__

    assert out["version"] == __version__


def test_every_command_s_json_is_valid_against_the_documented_schema(files):
    jsonschema = pytest.importorskip("jsonschema")
    schema = documented_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    runs = [("loss", "z.npy", "--labels", "y.npy", "--max-loss", "1"),
            ("loss", "-", "--labels", "y.npy", "--reduction", "none", "--max-loss", "3", "--per-row"),
            ("topk", "z.npy", "--labels", "y.npy", "-k", "2", "--min-accuracy", "0.9"),
            ("compare", "z.npy", "cand.npy", "--labels", "y.npy", "--max-kl", "0.1", "--max-kl-quantile",
             "0.9:1", "--min-agreement", "1", "--max-ppl-ratio", "1.5"),
            ("compare", "z.npy", "cand.npy", "--labels", "y.npy", "--max-seq-kl", "0.013", "--max-seq-ppl-ratio",
             "1.5", "--per-sequence"),
            ("temperature-sweep", "z.npy", "--labels", "y.npy", "--fit"),
            ("loss", "1 2 3; 3 2 1", "--labels", "0,0"),
            ("probs", "z.npy", "--log"), ("jacobian", "z.npy"), ("grad", "z.npy", "--upstream", "z.npy"),
            ("attention", "z.npy", "z.npy", "z.npy", "--causal")]
    for args in runs:
        completed = run(*args, "-f", "json", cwd=files, input=(files / "z.npy").read_bytes())
        assert completed.returncode in (0, 1), completed.stderr
        jsonschema.validate(json.loads(completed.stdout), schema)
    typed = json.loads(run("loss", "1 2 3; 3 2 1", "--labels", "0,0", "-f", "json").stdout)
    assert [entry["path"] for entry in typed["inputs"]] == [None, None]  # typed numbers have no path
    piped = json.loads(run("loss", "-", "--labels", "y.npy", "-f", "json", cwd=files,
                           input=(files / "z.npy").read_bytes()).stdout)
    assert piped["inputs"][0]["path"] == "-"


def test_compare_gates_are_listed_in_the_order_given_with_the_quantile_measured(files):
    from scipy.stats import entropy

    completed = run("compare", "z.npy", "cand.npy", "--max-kl", "1e-9", "--max-kl-quantile", "0.5:1",
                    "--min-agreement", "0.5", "-f", "json", cwd=files)
    assert completed.returncode == 1
    p = np.exp(-nll(LOGITS, np.zeros(4, int))[:, None] + LOGITS - LOGITS[:, :1])  # softmax rows
    cand = np.load(files / "cand.npy")
    q = np.exp(cand - cand.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    kl = entropy(p, q, axis=-1)
    gates = json.loads(completed.stdout)["gates"]
    assert [(g["option"], g["figure"], g["passed"]) for g in gates] == [
        ("--max-kl", "kl_mean", False), ("--max-kl-quantile", "kl_quantile_0.5", True),
        ("--min-agreement", "top1_agreement", True)]
    assert gates[0]["measured"] == pytest.approx(kl.mean(), rel=1e-9)
    assert gates[1]["measured"] == pytest.approx(np.quantile(kl, 0.5), rel=1e-9)


def test_binary_formats_carry_the_same_metadata(files):
    pq = pytest.importorskip("pyarrow.parquet")
    safetensors = pytest.importorskip("safetensors")
    args = ("topk", "z.npy", "--labels", "y.npy", "-k", "2", "--min-accuracy", "0.4")
    expected = json.loads(run(*args, "-f", "json", cwd=files).stdout)
    wanted = {key: expected[key] for key in ("command", "version", "inputs", "gates")}
    assert run(*args, "-o", "out.npz", cwd=files).returncode == 0
    with np.load(files / "out.npz") as archive:
        assert json.loads(str(archive["metadata"])) == wanted
        np.testing.assert_array_equal(archive["topk_accuracy"], TOP2)
    assert run(*args, "-o", "out.safetensors", cwd=files).returncode == 0
    with safetensors.safe_open(str(files / "out.safetensors"), framework="np") as file:
        metadata = file.metadata()
    assert {key: json.loads(metadata[key]) for key in wanted} == wanted
    assert run(*args, "-o", "out.parquet", cwd=files).returncode == 0
    assert json.loads(pq.read_schema(files / "out.parquet").metadata[b"softmax"]) == wanted


# ---------------------------------------------------------------- --report junit=PATH

def test_junit_report_validates_and_reads_back_one_testcase_per_gate(files):
    xmlschema = pytest.importorskip("xmlschema")
    junitparser = pytest.importorskip("junitparser")
    completed = run("compare", "z.npy", "cand.npy", "--labels", "y.npy", "--max-kl", "1e-9", "--min-agreement",
                    "0.5", "--max-ppl-ratio", "10", "--report", "junit=gates.xml", cwd=files)
    assert completed.returncode == 1, completed.stderr
    xmlschema.XMLSchema(SCHEMA_XSD).validate(files / "gates.xml")
    suites = list(junitparser.JUnitXml.fromfile(str(files / "gates.xml")))
    assert len(suites) == 1 and suites[0].tests == 3 and suites[0].failures == 1
    cases = {case.name: case for case in suites[0]}
    assert list(cases) == ["--max-kl 1e-09", "--min-agreement 0.5", "--max-ppl-ratio 10"]  # one comparison
    assert not cases["--max-kl 1e-09"].is_passed
    (failure,) = cases["--max-kl 1e-09"].result
    assert isinstance(failure, junitparser.Failure) and failure.message.startswith("mean KL ")
    assert cases["--min-agreement 0.5"].is_passed and cases["--max-ppl-ratio 10"].is_passed


def test_a_batch_reports_every_input_s_gate(files):
    junitparser = pytest.importorskip("junitparser")
    np.save(files / "good.npy", np.eye(3)[LABELS] * 9)  # confident and right: a loss of 2.5e-4
    completed = run("loss", "z.npy", "good.npy", "--labels", "y.npy", "--max-loss", "1", "--out-dir", "out",
                    "--report", "junit=gates.xml", cwd=files)
    assert completed.returncode == 1
    (suite,) = junitparser.JUnitXml.fromfile(str(files / "gates.xml"))
    assert {case.name: case.is_passed for case in suite} == {"--max-loss 1 (z.npy)": False,
                                                             "--max-loss 1 (good.npy)": True}


# ---------------------------------------------------------------- --report github

# A workflow command: ::NAME PROPERTIES::MESSAGE, property values without raw ':' or ','.
WORKFLOW_COMMAND = re.compile(r"^::error title=(?P<title>[^:,]*)::(?P<message>.*)$")


def unescape(text: str) -> str:
    """As the Actions runner unescapes a property or message (ActionCommand.cs)."""
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


def test_github_annotations_follow_the_workflow_command_syntax(files):
    odd = "odd, 100%: logits.npy"
    np.save(files / odd, LOGITS)
    completed = run("loss", odd, "--labels", "y.npy", "--max-loss", "1", "--report", "github", cwd=files,
                    env={"GITHUB_STEP_SUMMARY": ""})
    assert completed.returncode == 1
    assert completed.stdout.splitlines()[0] == "loss,accuracy,perplexity,bits_per_token"  # stdout stays data
    commands = [line for line in completed.stderr.splitlines() if line.startswith("::")]
    assert len(commands) == 1, completed.stderr
    match = WORKFLOW_COMMAND.match(commands[0])
    assert match, commands[0]
    assert unescape(match["title"]) == f"softmax loss: --max-loss 1 ({odd})"
    assert unescape(match["message"]) == f"loss {LOSS:.6g} > --max-loss 1"


def test_github_report_of_passed_gates_annotates_nothing(files):
    completed = run("topk", "z.npy", "--labels", "y.npy", "-k", "2", "--min-accuracy", "0.5", "--report", "github",
                    cwd=files, env={"GITHUB_STEP_SUMMARY": ""})
    assert completed.returncode == 0 and "::" not in completed.stderr


def test_step_summary_gets_a_markdown_table_appended(files):
    summary = files / "summary.md"
    summary.write_text("earlier step\n")
    completed = run("loss", "z.npy", "--labels", "y.npy", "--max-loss", "2", "--report", "github", cwd=files,
                    env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert completed.returncode == 0, completed.stderr
    lines = summary.read_text().splitlines()
    assert lines[0] == "earlier step"  # appended, never replaced
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| input | gate | passes when | measured | verdict |"
    assert re.fullmatch(r"\|(---\|){5}", table[1])
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert cells[:3] == ["z.npy", "`--max-loss 2`", "loss <= 2"]
    assert float(cells[3]) == pytest.approx(LOSS, rel=1e-5) and cells[4] == "✅ passed"


# ---------------------------------------------------------------- --report markdown=PATH, and what never changes

def test_markdown_report_is_the_table_under_a_heading(files):
    completed = run("topk", "z.npy", "--labels", "y.npy", "-k", "2", "--min-accuracy", "0.99", "--report",
                    "markdown=gates.md", cwd=files)
    assert completed.returncode == 1
    lines = (files / "gates.md").read_text().splitlines()
    assert lines[0] == "## softmax topk"
    cells = [cell.strip() for cell in lines[4].strip("|").split("|")]
    assert cells[1:3] == ["`--min-accuracy 0.99`", "topk_accuracy >= 0.99"]
    assert float(cells[3]) == pytest.approx(TOP2) and cells[4] == "❌ failed"


@pytest.mark.parametrize("spec,says", [("junit", "junit=PATH"), ("github=x.txt", "no path"),
                                       ("sarif=x", "github, junit=PATH or markdown=PATH")])
def test_a_bad_report_is_refused_before_any_work(files, spec, says):
    completed = run("loss", "z.npy", "--labels", "y.npy", "--max-loss", "1", "--report", spec, "-o", "out.json",
                    cwd=files)
    assert completed.returncode == 2
    assert completed.stderr.count("error:") == 1 and says in completed.stderr
    assert not (files / "out.json").exists()


GATED_RUNS = {
    "loss": ("loss", "z.npy", "--labels", "y.npy", "--mask", "m.npy", "--weights", "w.npy", "--max-loss", "9"),
    "topk": ("topk", "z.npy", "--labels", "y.npy", "--mask", "m.npy", "-k", "1", "--min-accuracy", "0.1"),
    "compare": ("compare", "z.npy", "cand.npy", "--labels", "y.npy", "--mask", "m.npy", "--max-kl", "1"),
    "batch": ("loss", "z.npy", "cand.npy", "--labels", "y.npy", "--max-loss", "9", "--out-dir", "out"),
}


@pytest.mark.parametrize("kind", ["junit", "markdown"])
@pytest.mark.parametrize("command,read", [(command, path) for command, args in GATED_RUNS.items()
                                          for path in args if path.endswith(".npy")])
def test_a_report_never_overwrites_an_input(files, command, read, kind):
    np.save(files / "m.npy", np.array([1, 1, 1, 0]))
    np.save(files / "w.npy", np.array([1.0, 2.0, 3.0]))
    before = (files / read).read_bytes()
    completed = run(*GATED_RUNS[command], "--report", f"{kind}=./{read}", "--force", "-f", "json", cwd=files)
    assert_one_error_line(completed, f"the output '{read}' is an input; inputs are never overwritten")
    assert (files / read).read_bytes() == before


@pytest.mark.parametrize("force", [(), ("--force",)])
@pytest.mark.parametrize("command", ["loss", "compare"])
def test_a_report_and_the_result_never_share_a_file(files, command, force):
    """With --force the report replaced the result; without, the result was written, then refused as existing."""
    np.save(files / "m.npy", np.array([1, 1, 1, 0]))
    np.save(files / "w.npy", np.array([1.0, 2.0, 3.0]))
    completed = run(*GATED_RUNS[command], "-o", "out.json", "--report", "junit=./out.json", *force, cwd=files)
    assert_one_error_line(completed, "-o and --report junit would both write", "--report junit=gates.xml")
    assert not (files / "out.json").exists()


def test_no_report_when_the_command_fails(files):
    completed = run("loss", "z.npy", "--labels", "9,9,9,9", "--max-loss", "1", "--report", "junit=gates.xml",
                    cwd=files)
    assert completed.returncode == 2
    assert not (files / "gates.xml").exists()
    assert not list(files.glob(".gates.xml.*"))  # no temporary left either


def test_reports_never_change_the_exit_status(files):
    for bound, status in (("2", 0), ("1", 1)):
        plain = run("loss", "z.npy", "--labels", "y.npy", "--max-loss", bound, cwd=files)
        reported = run("loss", "z.npy", "--labels", "y.npy", "--max-loss", bound, "--report", "github",
                       "--report", f"junit=g{bound}.xml", "--report", f"markdown=g{bound}.md", cwd=files,
                       env={"GITHUB_STEP_SUMMARY": ""})
        assert plain.returncode == reported.returncode == status
        assert plain.stdout == reported.stdout


SAMPLE = ROOT / "sample_data"


def test_a_failed_gate_at_its_bound_prints_the_digits_that_show_why(tmp_path):
    """float32 logits print their loss in float32's shortest digits (0.2106221); that figure as the bound fails, as
    the loss is 0.21062210857... The line showed both to six digits: "loss 0.210622 > --max-loss 0.210622"."""
    printed = json.loads(run("loss", SAMPLE / "digits_val_logits.npy", "--labels", SAMPLE / "digits_val_labels.npy",
                             "-f", "json").stdout)["loss"]
    completed = run("loss", SAMPLE / "digits_val_logits.npy", "--labels", SAMPLE / "digits_val_labels.npy",
                    "--max-loss", repr(printed), "-f", "json")
    assert completed.returncode == 1
    line = completed.stderr.strip().splitlines()[-1]
    shown = float(line.split()[3])  # gate failed: loss X > --max-loss BOUND
    assert shown > printed and f"--max-loss {printed!r} (" in line


def test_every_report_shows_the_digits_that_show_a_gate_s_verdict_and_its_bound_as_typed(files):
    """A bound just under the figure failed the gate while every report printed both to six digits, the same
    ("ppl_ratio = 1.01568; passes when ppl_ratio <= 1.01568"), and named the gate "--max-ppl-ratio 1.01568"."""
    junitparser = pytest.importorskip("junitparser")
    args = ("compare", "z.npy", "cand.npy", "--labels", "y.npy")
    ratio = json.loads(run(*args, "-f", "json", cwd=files).stdout)["ppl_ratio"]
    bound = repr(float(f"{ratio:.10g}") - 1e-9)  # below the ratio, equal to it in six digits
    assert float(bound) < ratio and f"{float(bound):.6g}" == f"{ratio:.6g}"
    completed = run(*args, "--max-ppl-ratio", bound, "--report", "junit=gates.xml", "--report", "markdown=gates.md",
                    "--report", "github", cwd=files, env={"GITHUB_STEP_SUMMARY": ""})
    assert completed.returncode == 1, completed.stderr
    (suite,) = junitparser.JUnitXml.fromfile(str(files / "gates.xml"))
    (case,) = suite
    assert case.name == f"--max-ppl-ratio {bound}"
    (failure,) = case.result
    measured, passes_when = failure.text.split("; ")
    assert passes_when == f"passes when ppl_ratio <= {bound}"
    assert float(measured.removeprefix("ppl_ratio = ")) == ratio
    cells = [cell.strip() for cell in (files / "gates.md").read_text().splitlines()[4].strip("|").split("|")]
    assert cells[:3] == [f"`--max-ppl-ratio {bound}`", f"ppl_ratio <= {bound}", repr(ratio)]
    (annotation,) = [line for line in completed.stderr.splitlines() if line.startswith("::")]
    assert unescape(WORKFLOW_COMMAND.match(annotation)["title"]) == f"softmax compare: --max-ppl-ratio {bound}"


def test_a_step_summary_that_is_an_input_is_refused(files):
    """$GITHUB_STEP_SUMMARY pointing at the labels: --report github appended its table to them (exit 0)."""
    before = (files / "y.npy").read_bytes()
    assert_one_error_line(run("loss", "z.npy", "--labels", "y.npy", "--max-loss", "2", "--report", "github",
                              cwd=files, env={"GITHUB_STEP_SUMMARY": str(files / "y.npy")}),
                          "$GITHUB_STEP_SUMMARY", "is an input or the result of this run")
    assert (files / "y.npy").read_bytes() == before


def test_keep_going_records_the_verdicts_of_the_inputs_that_did_not_fail(files):
    """A batch with --keep-going where one input is unreadable: the other's gate failed and was printed, but no
    report was written (exit 2), so a CI system reading the JUnit file saw no result at all."""
    (files / "in").mkdir()
    np.save(files / "in" / "a.npy", LOGITS)
    (files / "in" / "b.npy").write_bytes(b"x")
    summary = files / "summary.md"
    completed = run("loss", "in/a.npy", "in/b.npy", "--labels", "y.npy", "--max-loss", "1", "--out-dir", "out",
                    "-f", "json", "--keep-going", "--report", "junit=g.xml", "--report", "markdown=g.md",
                    "--report", "github", cwd=files, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert completed.returncode == 2, completed.stderr
    assert "1 of 2 inputs failed" in completed.stderr.splitlines()[-1]
    junit = (files / "g.xml").read_text()
    assert 'failures="1"' in junit and "in/a.npy" in junit
    for table in ((files / "g.md").read_text(), summary.read_text()):
        assert "in/a.npy" in table and "❌ failed" in table
    assert any(line.startswith("::error") and "in/a.npy" in line for line in completed.stderr.splitlines())
