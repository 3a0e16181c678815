"""The distributed engine on a real LocalCluster of 2 worker processes, against the in-process core.

The in-process core is the reference here on purpose: the promise under test
is "the same numbers with and without --scheduler" (the core's own
correctness is tested against independent references elsewhere).
"""

from __future__ import annotations

import math
import os
import signal
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")

from softmax_cli import core  # noqa: E402
from softmax_cli.cluster import (  # noqa: E402
    Engine,
    ExactSum,
    Run,
    connect,
    cross_entropy_terms,
    dashboard_link,
    expand_sources,
    fit_temperature,
    map_to_npy,
    temperature_sweep,
    topk,
)
from softmax_cli.errors import InputError, UsageError  # noqa: E402
from softmax_cli.scheduled import address as scheduler_address  # noqa: E402

N_SHARDS, SHARD_ROWS, CLASSES = 4, 300, 97


@pytest.fixture(scope="module")
def client():
    with connect("local:2") as client:
        client.wait_for_workers(2)
        yield client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Logits (float32 and float64), labels, a directory of shards and the same rows as one file."""
    root = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(15)
    logits = (rng.standard_normal((N_SHARDS * SHARD_ROWS, CLASSES)) * 3).astype(np.float32)
    labels = rng.integers(0, CLASSES, N_SHARDS * SHARD_ROWS)
    labels[::17] = -100
    logits[labels >= 0, labels[labels >= 0]] += 2.0  # better than chance, so a temperature fit exists
    shards = root / "shards"
    shards.mkdir()
    for i, part in enumerate(np.split(logits, N_SHARDS)):
        np.save(shards / f"shard-{i:05d}.npy", part)
    np.save(root / "one.npy", logits)
    np.save(root / "one64.npy", logits.astype(np.float64))
    return {"root": root, "logits": logits, "labels": labels, "shards": shards}


def _run(client, inputs, rows_per_unit=128, **engine):
    return Run.plan(Engine(client, **engine), expand_sources(inputs), rows_per_unit=rows_per_unit)


def _leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("operation", ["softmax", "log_softmax"])
def test_probs_of_one_split_file_equal_the_core_bit_for_bit(client, data, tmp_path, operation):
    outcome = map_to_npy(_run(client, data["root"] / "one.npy"), operation, [tmp_path / "out.npy"])
    expected = getattr(core, operation)(data["logits"], axis=-1)
    got = np.load(tmp_path / "out.npy")
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert outcome.value == [str(tmp_path / "out.npy")] and not outcome.failures and not _leftovers(tmp_path)


def test_probs_of_shards_make_one_output_per_shard(client, data, tmp_path):
    outputs = [tmp_path / f"p{i}.npy" for i in range(N_SHARDS)]
    map_to_npy(_run(client, data["shards"], rows_per_unit=70), "softmax", outputs, temperature=2.0)
    for output, part in zip(outputs, np.split(data["logits"], N_SHARDS)):
        assert np.array_equal(np.load(output), core.softmax(part, temperature=2.0))


def test_grad_mean_divides_by_the_whole_runs_denominator(client, data, tmp_path):
    outputs = [tmp_path / f"g{i}.npy" for i in range(N_SHARDS)]
    map_to_npy(_run(client, data["shards"]), "grad", outputs, labels=data["labels"], label_smoothing=0.1)
    got = np.concatenate([np.load(p) for p in outputs])
    assert np.array_equal(got, core.cross_entropy_grad(data["logits"], data["labels"], label_smoothing=0.1))


@pytest.mark.parametrize("name", ["one.npy", "one64.npy", "shards"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_and_accuracy_equal_the_core(client, data, name, reduction):
    logits = np.load(data["root"] / name) if name != "shards" else data["logits"]
    expected = core.cross_entropy_terms(logits, data["labels"], reduction=reduction)
    got = cross_entropy_terms(_run(client, data["root"] / name), data["labels"], reduction=reduction).value
    assert got.loss.dtype == expected.loss.dtype
    # The gathered per-row losses go through the core's own reduction: bit-identical, for any split.
    assert np.array_equal(got.loss.reshape(expected.loss.shape), expected.loss)
    assert np.array_equal(got.per_sample, expected.per_sample.reshape(-1))
    assert (got.correct, got.counted, got.denominator) == (expected.correct, expected.counted, expected.denominator)


def test_reductions_do_not_depend_on_the_split(client, data):
    runs = [_run(client, data["root"] / "one64.npy", rows_per_unit=n) for n in (1200, 333, 41)]
    results = {(float(t.loss), t.accuracy) for t in (cross_entropy_terms(r, data["labels"]).value for r in runs)}
    assert len(results) == 1


def test_exact_sum_is_the_correctly_rounded_sum_for_any_split():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(5000) * 10.0 ** rng.integers(-200, 200, 5000)
    whole = ExactSum.of(values).value()
    assert whole == math.fsum(values)
    assert sum((ExactSum.of(part) for part in np.array_split(values, 13)), ExactSum()).value() == whole
    assert math.isnan(ExactSum.of([np.inf, -np.inf]).value()) and ExactSum.of([1.0, np.inf]).value() == np.inf


def test_topk_equals_the_core(client, data):
    indices, probs = topk(_run(client, data["shards"], rows_per_unit=50), 5).value
    expected = core.topk(data["logits"], 5)
    assert np.array_equal(indices, expected[0]) and np.array_equal(probs, expected[1])



def test_fit_temperature_equals_the_core(client, data):
    fitted = fit_temperature(_run(client, data["shards"], rows_per_unit=400), data["labels"]).value
    assert math.isclose(fitted, core.fit_temperature(data["logits"], data["labels"]), rel_tol=1e-11)


def test_zarr_round_trip_through_probs_and_loss(client, data, tmp_path):
    zarr = pytest.importorskip("zarr")
    array = zarr.create_array(store=str(tmp_path / "logits.zarr"), shape=data["logits"].shape, chunks=(250, CLASSES),
                              dtype="float32")
    array[:] = data["logits"]
    map_to_npy(_run(client, tmp_path / "logits.zarr", rows_per_unit=300), "softmax", [tmp_path / "out.npy"])
    assert np.array_equal(np.load(tmp_path / "out.npy"), core.softmax(data["logits"]))
    got = cross_entropy_terms(_run(client, tmp_path / "logits.zarr"), data["labels"], reduction="none").value
    assert np.array_equal(got.per_sample, core.cross_entropy_terms(data["logits"], data["labels"]).per_sample)


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_right(client, data, tmp_path):
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker(unit):
        if not killed:
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    run = _run(client, data["root"] / "one.npy", rows_per_unit=10, on_unit_done=kill_one_worker)
    map_to_npy(run, "softmax", [tmp_path / "out.npy"])
    assert killed and np.array_equal(np.load(tmp_path / "out.npy"), core.softmax(data["logits"]))
    assert not _leftovers(tmp_path)
    client.wait_for_workers(2, timeout=30)
    assert pids[0] not in client.run(os.getpid).values()  # the nanny replaced the killed process


@pytest.fixture
def bad_shards(data, tmp_path):
    """The shards with a NaN in the middle one: rows 5 of shard-00002."""
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, part in enumerate(np.split(data["logits"].copy(), N_SHARDS)):
        if i == 2:
            part[5, 3] = np.nan
        np.save(shards / f"shard-{i:05d}.npy", part)
    return shards


def test_a_bad_shard_stops_the_run_naming_it_and_leaves_no_output(client, bad_shards, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outputs = [out / f"p{i}.npy" for i in range(N_SHARDS)]
    with pytest.raises(InputError) as raised:
        map_to_npy(_run(client, bad_shards), "softmax", outputs)
    assert "shard-00002.npy" in str(raised.value) and "NaN" in str(raised.value)
    assert "row 5" in str(raised.value)
    assert list(out.iterdir()) == []
    with pytest.raises(InputError, match="shard-00002.npy"):
        cross_entropy_terms(_run(client, bad_shards), np.zeros(N_SHARDS * SHARD_ROWS, dtype=int),
                            masked_rows="error")


def test_keep_going_finishes_the_other_shards_and_lists_the_bad_one(client, data, bad_shards, tmp_path):
    outputs = [tmp_path / f"p{i}.npy" for i in range(N_SHARDS)]
    outcome = map_to_npy(_run(client, bad_shards, keep_going=True), "softmax", outputs)
    assert [e.source for e in outcome.failures] == [str(bad_shards / "shard-00002.npy")]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["p0.npy", "p1.npy", "p3.npy"]
    assert np.array_equal(np.load(outputs[3]), core.softmax(np.split(data["logits"], N_SHARDS)[3]))


def test_a_truncated_shard_is_an_input_error_naming_it(client, data, tmp_path):
    np.save(tmp_path / "a.npy", data["logits"][:100])
    np.save(tmp_path / "b.npy", data["logits"][:100])
    with open(tmp_path / "b.npy", "r+b") as file:
        file.truncate(os.path.getsize(tmp_path / "b.npy") - 1000)
    with pytest.raises(InputError, match=r"truncated.*b\.npy"):
        topk(_run(client, [tmp_path / "a.npy", tmp_path / "b.npy"]), 2)


def test_pickled_npy_is_refused_before_any_work(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled"):
        expand_sources(tmp_path / "objects.npy")


def test_scheduler_comes_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.setenv("SOFTMAX_SCHEDULER", "tcp://example:8786")
    assert scheduler_address(None) == "tcp://example:8786"
    assert scheduler_address("local:2") == "local:2"
    monkeypatch.delenv("SOFTMAX_SCHEDULER")
    assert scheduler_address(None) is None
    for bad in ("local:0", "local:x", "example:8786"):
        with pytest.raises(UsageError):
            with connect(bad):
                pass


def test_a_shard_gone_after_planning_is_retried_then_an_input_error_naming_it(client, data, tmp_path):
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, data["logits"][:50])
    run = _run(client, [tmp_path / "a.npy", tmp_path / "b.npy"])
    (tmp_path / "b.npy").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"cannot read it.*b\.npy, rows 0\.\.49"):
        map_to_npy(run, "softmax", [out / "a.npy", out / "b.npy"])
    assert list(out.iterdir()) == []


def test_progress_follows_every_unit_and_the_dashboard_has_a_link(client, data, tmp_path):
    done = []
    run = _run(client, data["shards"], rows_per_unit=100, on_unit_done=done.append)
    topk(run, 1)
    assert sorted((u.source_index, u.start) for u in done) == sorted((u.source_index, u.start) for u in run.units)
    assert dashboard_link(client).startswith("http")


def test_keep_going_loss_is_the_mean_over_the_shards_that_succeeded(client, data, bad_shards):
    outcome = cross_entropy_terms(_run(client, bad_shards, keep_going=True), data["labels"])
    good = np.r_[0:600, 900:1200]
    expected = core.cross_entropy_terms(data["logits"][good], data["labels"][good])
    assert [e.source for e in outcome.failures] == [str(bad_shards / "shard-00002.npy")]
    assert outcome.value.denominator == expected.denominator and outcome.value.correct == expected.correct
    assert outcome.value.loss == expected.loss


def _exit_the_worker(unit):
    os._exit(1)


def test_a_unit_that_keeps_killing_its_worker_fails_in_one_line(data):
    """On a cluster of its own that gives up at the first death: no worker has to come back.

    A worker restarted on a busy machine may never arrive (WorkerStartTimeoutError on the
    shared cluster); here the test waits only on events: the worker, then the unit's end.
    """
    cloudpickle = pytest.importorskip("cloudpickle")
    dask = pytest.importorskip("dask")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            connect("local:1", dashboard=False) as own:
        own.wait_for_workers(1)
        cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
        try:
            run = _run(own, data["root"] / "one.npy", rows_per_unit=1200, retries=0)
            with pytest.raises(InputError, match=r"kept dying.*one\.npy, rows 0\.\.1199"):
                run.engine.run(run.units, _exit_the_worker)
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.parametrize("with_labels", [True, False])
def test_temperature_sweep_summaries_equal_the_core(client, data, with_labels):
    labels = data["labels"] if with_labels else None
    temperatures = [0.5, 1.0, 3.0]
    got = temperature_sweep(_run(client, data["shards"], rows_per_unit=130), temperatures, labels).value
    expected = core.temperature_sweep(data["logits"], temperatures, labels)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-13, atol=0, err_msg=name)


def test_every_dask_logger_is_silenced_even_one_dask_config_gave_a_level():
    """A worker lost mid-run on a tcp:// cluster printed 'distributed.client - WARNING - Couldn't gather 1 keys,
    rescheduling': Dask's config sets distributed.client's level itself, which raising 'distributed' left alone."""
    import logging

    import distributed  # noqa: F401  (its import applies Dask's logging config)

    from softmax_cli.cluster.engine import QUIET_LOGGERS, _quiet_logging

    _quiet_logging()
    named = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in QUIET_LOGGERS]
    assert "distributed.client" in named
    assert [name for name in named if logging.getLogger(name).isEnabledFor(logging.CRITICAL)] == []
