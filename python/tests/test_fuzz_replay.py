"""Replays the atheris target's corpora (tests/fuzz/corpus/python_seed, python_regression) through
its check function, tests/fuzz/python_api_fuzz.py:run_one, without atheris: every seed is a valid
call that must return "ok" with its contract checks passing; every regression input reproduces a
known finding and is expected to fail (strict xfail: it turns into a failure once the bug is fixed,
and then its KNOWN entry and the xfail go).  Skips when the repository's tests/fuzz is absent or
the package is not importable."""

import os
import sys

import pytest

pytest.importorskip("flashnce")
pytest.importorskip("numpy")

FUZZ_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fuzz")
)
if not os.path.isfile(os.path.join(FUZZ_DIR, "python_api_fuzz.py")):
    pytest.skip("tests/fuzz/python_api_fuzz.py not found (not a repository checkout)",
                allow_module_level=True)
sys.path.insert(0, FUZZ_DIR)
import python_api_fuzz as harness  # noqa: E402


def _files(name):
    path = os.path.join(FUZZ_DIR, "corpus", name)
    return sorted(os.path.join(path, f) for f in os.listdir(path)) if os.path.isdir(path) else []


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("path", _files("python_seed"), ids=os.path.basename)
def test_seed(path):
    assert harness.run_one(_read(path), tolerate_known=False) == "ok"


# Open findings in flashnce/_core.py that regression inputs reproduce (see KNOWN in the harness):
# name -> (exception, reason), each an expected failure until fixed.
_REASONS = {}  # none open: the four findings of 2026-12-03 are fixed and replay as regressions


def _regression_params():
    for path in _files("python_regression"):
        name = os.path.basename(path)
        raises, reason = _REASONS.get(name, (None, None))
        marks = [pytest.mark.xfail(raises=raises, reason=reason, strict=True)] if raises else []
        yield pytest.param(path, marks=marks, id=name)


@pytest.mark.parametrize("path", list(_regression_params()))
def test_regression(path):
    harness.run_one(_read(path), tolerate_known=False)


def test_known_findings_have_regression_inputs():
    names = {os.path.basename(p) for p in _files("python_regression")}
    for name, _, _ in harness.KNOWN:
        assert "known_" + name in names
        assert "known_" + name in _REASONS
