"""docs/results.md and docs/ci.md say what the code says: each shipped model's parameter count, and the number of
tests the README's test command runs (issue #40: the docs had quoted another captioner's count and an old total)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = (ROOT / "docs" / "results.md").read_text()
CI = (ROOT / "docs" / "ci.md").read_text()


def parameters(model, trained_only=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trained_only)


def quoted(pattern):
    """The whole numbers the groups of `pattern` find in docs/results.md, which must say it exactly once."""
    found = re.findall(pattern, RESULTS)
    assert len(found) == 1, f"docs/results.md says this {len(found)} times, not once: {pattern}"
    return [int(n.replace(",", "")) for n in (found[0] if isinstance(found[0], tuple) else [found[0]])]


def test_results_quote_each_shipped_models_parameters():
    from crossmodal import pretrained

    captioner = parameters(pretrained.load_captioner())
    assert quoted(r"shipped checkpoint size \| [\d.]+ MB \(([\d,]+) parameters\)") == [captioner]
    assert quoted(r"The captioner shipped now has ([\d,]+) parameters") == [captioner]
    assert quoted(r"wide-captioner checkpoint size [\d.]+ MB \(([\d,]+) parameters\)") == [
        parameters(pretrained.load_wide_captioner())]
    assert quoted(r"reader checkpoint size \| [\d.]+ MB \(([\d,]+) parameters") == [
        parameters(pretrained.load_reader())]
    assert quoted(r"answerer checkpoint size \| [\d.]+ MB \(([\d,]+) parameters") == [
        parameters(pretrained.load_answerer())]
    assert quoted(r"a character per token, ([\d,]+) parameters") == [parameters(pretrained.load_text_lm()[0])]
    eyes = pretrained.load_gpt2_eyes()[0]
    assert quoted(r"([\d,]+) of ([\d,]+) parameters trained") == [parameters(eyes, trained_only=True), parameters(eyes)]
    assert quoted(r"\| parameters \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|") == [
        parameters(pretrained.load_fusion(name)) for name in ("cross", "prefix", "raw")]


def test_ci_md_counts_the_tests_the_readme_command_collects():
    """The newest row of docs/ci.md counts what `python -m pytest --nbval` collects now (seconds: nothing is run)."""
    rows = CI.split("|---|---|---|", 1)[1]
    stated = int(re.search(r"([\d,]+) tests", rows).group(1).replace(",", ""))
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    if "SKIPPED" in run.stdout:  # a module skipped whole (no Chromium for the browser tests): not the full count
        pytest.skip("a test module is skipped here, so this machine collects fewer tests than CI: "
                    + next(line for line in run.stdout.splitlines() if "SKIPPED" in line))
    collected = re.search(r"^(\d+) tests? collected", run.stdout, re.M)
    assert collected, f"pytest --collect-only printed no count:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    assert stated == int(collected.group(1)), (
        f"docs/ci.md's newest row counts {stated} tests; the README's test command collects {collected.group(1)}: "
        "run it and record it there")
