"""The core as a NumPy user finds it: every public name visible, explicit keywords, ValueErrors, axis=None as scipy.

Also runs docs/python-api.md as a doctest.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import pydoc
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, reference_log_softmax, reference_softmax

from softmax_cli import core

STUB = ROOT / "softmax_cli" / "core" / "__init__.pyi"


def stub_names() -> set[str]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    return {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def test_the_python_api_page_runs_as_doctests():
    failed, attempted = doctest.testfile(str(ROOT / "docs" / "python-api.md"), module_relative=False,
                                         optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 15 and failed == 0


def test_every_public_name_is_listed_resolves_and_is_in_the_stub():
    assert {"cross_entropy", "topk", "softmax", "divergence", "fit_temperature", "InputError"} <= set(core.__all__)
    assert set(core.__all__) <= set(dir(core))
    assert all(getattr(core, name) is not None for name in core.__all__)
    missing, extra = set(core.__all__) - stub_names(), stub_names() - set(core.__all__)
    assert not missing and not extra, f"softmax_cli/core/__init__.pyi needs {sorted(missing)}, lists {sorted(extra)}"


def test_help_shows_the_lazily_imported_functions():
    text = pydoc.render_doc(core, renderer=pydoc.plaintext)
    assert "cross_entropy(" in text and "topk(" in text and "temperature_sweep(" in text


def test_importing_the_core_still_imports_only_softmax_itself():
    code = ("import sys, softmax_cli.core as c; dir(c); "
            "print(sorted(m for m in sys.modules if m.startswith('softmax_cli.core.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    loaded = eval(done.stdout)  # a printed list of module names
    assert "softmax_cli.core.crossentropy" not in loaded and "softmax_cli.core.softmax" in loaded


@pytest.mark.parametrize("call", [
    lambda: core.softmax([1.0, np.nan]),
    lambda: core.log_softmax([[np.inf, 0.0]]),
    lambda: core.cross_entropy([[1.0, 2.0]], [5]),
    lambda: core.topk([[1.0, 2.0]], k=3),
], ids=["softmax nan", "log_softmax inf", "label out of range", "k past C"])
def test_input_errors_are_value_errors(call):
    with pytest.raises(ValueError) as raised:
        call()
    assert isinstance(raised.value, core.InputError)


@pytest.mark.parametrize("function", [core.cross_entropy, core.cross_entropy_terms, core.cross_entropy_grad])
def test_cross_entropy_keywords_are_explicit_and_a_typo_names_the_function(function):
    parameters = inspect.signature(function).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert {"weights", "ignore_index", "reduction", "label_smoothing", "axis", "temperature", "from_probs", "eps",
            "masked_rows"} <= set(parameters)
    with pytest.raises(TypeError, match=rf"^{function.__name__}\(\) got an unexpected keyword argument 'reductoin'"):
        function([[1.0, 2.0]], [0], reductoin="sum")


def test_axis_none_normalises_over_every_element_as_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    np.testing.assert_allclose(core.softmax(x, axis=None), special.softmax(x, axis=None), rtol=1e-13)
    np.testing.assert_allclose(core.log_softmax(x, axis=None), special.log_softmax(x, axis=None), rtol=1e-13)
    assert float(core.logsumexp(x, axis=None)) == pytest.approx(special.logsumexp(x), rel=1e-14)
    assert core.logsumexp(x, axis=None, keepdims=True).shape == special.logsumexp(x, axis=None, keepdims=True).shape


def test_axis_none_against_numpy_float64():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    flat = x.reshape(-1)
    np.testing.assert_allclose(core.softmax(x, axis=None), reference_softmax(flat).reshape(2, 2), rtol=1e-14)
    np.testing.assert_allclose(core.log_softmax(x, axis=None), reference_log_softmax(flat).reshape(2, 2), rtol=1e-14)
    p = reference_softmax(flat)
    assert float(core.entropy(x, axis=None)) == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-14)


def test_importing_every_submodule_first_shadows_no_public_name():
    """A submodule named like a public function (it was ``core.divergence_summary``) replaces it once imported."""
    script = ("import importlib, pkgutil, types, softmax_cli.core as core\n"
              "for module in pkgutil.iter_modules(core.__path__):\n"
              "    importlib.import_module('softmax_cli.core.' + module.name)\n"
              "print(sorted(n for n in core.__all__ if isinstance(getattr(core, n), types.ModuleType)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
