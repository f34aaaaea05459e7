"""DataParallel under `mpiexec -n 2` against one process: same weights, same
logs, clear errors on every rank, and a failing rank ends the job.

The scenarios live in mpi_scenarios.py; one mpiexec job runs those that
finish normally, and each failure scenario runs in a job of its own. These
tests skip where mpi4py or mpiexec is missing, except under CI (CI=true),
where they fail instead: `pip install 'graphnet[mpi]'`.
"""

import json
import os
import shutil
import subprocess
import sys

import mpi_scenarios as scenarios
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_scenarios.py")
ROOT = os.path.dirname(os.path.dirname(HERE))
NORMAL = ["equivalence", "uneven", "tiny_remainder", "bad_batch", "different_graphs",
          "different_calls", "resume", "graph_level"]


def _mpiexec() -> str:
    missing = []
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        missing.append("mpi4py")
    launcher = shutil.which("mpiexec")
    if launcher is None:
        missing.append("mpiexec")
    if missing:
        why = f"needs {' and '.join(missing)}: pip install 'graphnet[mpi]' (mpi4py, mpich)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the MPI tests, but this environment lacks them: {why}")
        pytest.skip(why)
    return launcher


def _launch(out, *names, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT, HERE, os.environ.get("PYTHONPATH", "")]), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([_mpiexec(), "-n", "2", sys.executable, SCRIPT, str(out), *names],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Run every normal scenario once on 2 ranks; (out folder, reports by rank)."""
    out = tmp_path_factory.mktemp("mpi")
    done = _launch(out, *NORMAL)
    assert done.returncode == 0, f"mpiexec failed:\n{done.stdout}\n{done.stderr}"
    reports = [json.load(open(out / f"report_{rank}.json")) for rank in (0, 1)]
    return out, reports


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _assert_same_weights(ours, reference, atol=2e-6):
    assert len(ours) == len(reference)
    for i, (a, b) in enumerate(zip(ours, reference)):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=f"weight {i}")


def test_two_ranks_match_one_process_over_50_steps_with_dropout_and_shuffling(job):
    out, reports = job
    model, history = scenarios.train(None)
    reference = model.get_weights()
    for rank in (0, 1):
        _assert_same_weights(_weights(out / f"equivalence_{rank}.npz"), reference)
        ours = reports[rank]["equivalence"]["history"]
        np.testing.assert_allclose(ours["loss"], history["loss"], rtol=1e-6)
        assert ours["accuracy"] == pytest.approx(history["accuracy"], abs=1e-12)
    assert reports[0]["equivalence"]["stats"]["steps"] == scenarios.STEPS


def test_uneven_shards_and_last_batch_match_one_process(job):
    out, reports = job
    model, history = scenarios.train(None, batch_size=63, examples=130, epochs=2, features=50)
    for rank in (0, 1):
        _assert_same_weights(_weights(out / f"uneven_{rank}.npz"), model.get_weights())
        np.testing.assert_allclose(reports[rank]["uneven"]["history"]["loss"],
                                   history["loss"], rtol=1e-6)


def test_last_batch_smaller_than_the_ranks_is_skipped_with_a_warning(job):
    _, reports = job
    warned = reports[0]["tiny_remainder"]["warnings"]
    assert any("last batch of 1 rows" in w and "skipped" in w for w in warned), warned
    assert reports[1]["tiny_remainder"]["warnings"] == []      # rank 0 speaks for all
    # the epoch's logs cover the 64 rows trained on, identically on both ranks
    assert reports[0]["tiny_remainder"]["history"] == reports[1]["tiny_remainder"]["history"]


@pytest.mark.parametrize("scenario, words", [
    ("bad_batch", ["batch_size 1 is the global batch", "2 ranks", "batch_size >= 2"]),
    ("different_graphs", ["different training graphs", "ranks 1 differ from rank 0"]),
    ("different_calls", ["called fit differently", "epochs=1", "epochs=2"]),
])
def test_bad_input_raises_a_clear_error_on_every_rank(job, scenario, words):
    _, reports = job
    for rank in (0, 1):
        error = reports[rank][scenario]
        assert error["type"] == "DistributedError" and error["collective"], error
        assert f"rank {rank} of 2" in error["message"]
        for word in words:
            assert word in error["message"], (word, error["message"])


def test_the_rank_whose_graph_differs_names_the_first_difference(job):
    _, reports = job
    message = reports[1]["different_graphs"]["message"]
    assert "f32[50,16]" in message and "f32[50,24]" in message


def test_only_rank_0_writes_and_load_model_resumes(job, tmp_path):
    out, reports = job
    assert (out / "ckpt_rank0.npz").exists() and (out / "log_rank0.csv").exists()
    assert not (out / "ckpt_rank1.npz").exists() and not (out / "log_rank1.csv").exists()
    model, history = scenarios.resume_run(None, str(tmp_path))
    for rank in (0, 1):
        _assert_same_weights(_weights(out / f"resume_{rank}.npz"), model.get_weights())
        np.testing.assert_allclose(reports[rank]["resume"]["history"]["loss"],
                                   history["loss"], rtol=1e-6)


def test_graph_level_allreduce_and_broadcast(job):
    import graphnet as gn
    out, _ = job
    x, y = scenarios.data(64, 50)
    xs, ys = gn.placeholder((None, 50)), gn.placeholder((None,), "int64")
    w = gn.variable(gn.init.glorot_uniform((50, 10), seed=0))        # rank 0's start
    b = gn.variable(np.zeros(10, np.float32))
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(xs @ w + b, ys))
    step = gn.optim.SGD(0.5).minimize(loss)
    sess = gn.Session()
    for _ in range(5):
        sess.run(step, {xs: x, ys: y})
    for rank in (0, 1):
        ours = _weights(out / f"graph_level_{rank}.npz")
        _assert_same_weights(ours, [sess.get(w), sess.get(b)])


@pytest.mark.parametrize("scenario, words", [
    ("failing_rank", ["boom: rank 1 failed on purpose", "rank 1 of 2 failed with RuntimeError",
                      "aborting all 2 ranks"]),
    ("hanging_rank", ["rank 0 of 2", "did not complete within 2 s", "aborting all 2 ranks"]),
    ("dying_rank", []),
])
def test_a_failing_rank_ends_the_job_instead_of_hanging(tmp_path, scenario, words):
    done = _launch(tmp_path, scenario, timeout=60)  # a hang would raise TimeoutExpired
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    for word in words:
        assert word in output, (word, output[-3000:])
