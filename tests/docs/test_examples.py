"""Every shipped example spec is valid as it stands, so `llmagentos run examples/X.yaml` never fails on its own spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmagentos.config import load_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_is_an_example_per_capability():
    kinds = {load_spec(path).kind for path in EXAMPLES}
    assert kinds == {"train", "multitask", "meta", "multiagent", "lifelong", "plasticity"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_spec_validates_into_jobs(path):
    spec = load_spec(path)
    assert spec.jobs and all(job.kind == spec.kind for job in spec.jobs)
