"""Without Graphviz's `dot`, viz tests skip with a one-line reason, unless CI is
set: then they run and fail (tests/conftest.py). Checked by running
test_viz_draw.py in a child pytest whose PATH holds no `dot`."""

import os
import re
import subprocess
import sys
from pathlib import Path

DRAW_TESTS = Path(__file__).with_name("test_viz_draw.py")


def _pytest_without_dot(tmp_path, ci: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)   # an empty folder: no `dot` to find
    if ci:
        env["CI"] = "true"
    done = subprocess.run([sys.executable, "-m", "pytest", str(DRAW_TESTS), "-q", "-rs",
                           "-p", "no:cacheprovider"], cwd=DRAW_TESTS.parents[2], env=env,
                          capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def test_without_dot_viz_tests_skip_with_the_reason(tmp_path):
    out = _pytest_without_dot(tmp_path, ci=False)
    assert "failed" not in out and re.search(r"\d+ skipped", out), out
    reasons = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all(line.endswith("needs Graphviz's `dot` (apt-get install graphviz, "
                                         "brew install graphviz)") for line in reasons), out


def test_under_ci_viz_tests_without_dot_fail(tmp_path):
    out = _pytest_without_dot(tmp_path, ci=True)
    assert re.search(r"\d+ failed", out) and "skipped" not in out, out
