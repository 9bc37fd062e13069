"""Experiment specs: validated before any work with the field path, expanded into grid × seed jobs, re-runs skip."""

import json
import re

import pytest
import yaml

from llmagentos.config import JOB_KINDS, load_spec, spec_schema, validate_spec
from llmagentos.core.errors import UsageError
from helpers import cli, comparable

TRAIN = {"env": "CliffWalking-v1", "algo": "q-learning", "episodes": 15, "eval_episodes": 1, "tensorboard": False,
         "config": {"epsilon": 0.2}}


def write_spec(tmp_path, spec, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda s: s["train"]["config"].update(alpha="fast"), "train.config.alpha: Input should be a valid number"),
    (lambda s: s["train"].update(stepz=10), "train.stepz: unknown key"),
    (lambda s: s["train"]["config"].update(alfa=0.1), "train.config.alfa: unknown key"),
    (lambda s: s["train"].update(algo="q-lerning"), "train.algo: unknown algorithm 'q-lerning'"),
    (lambda s: s.update(backend="slurm"), "backend: Input should be 'inline', 'processes' or 'ray'"),
    (lambda s: s.update(trian={}), "trian: unknown key"),
    (lambda s: s["train"].update(episodes="many"), "train.episodes: Input should be a valid integer"),
    (lambda s: s["train"]["config"].update(alpha=3.0), "train.config: alpha must be in (0, 1]"),
    (lambda s: s.update(grid={"config.gamma": [0.9, "high"]}), "train.config.gamma"),
])
def test_bad_spec_refused_with_field_path_and_exit_2(tmp_path, capsys, change, message):
    spec = {"out": str(tmp_path / "out"), "seeds": 2, "train": json.loads(json.dumps(TRAIN))}
    change(spec)
    code, out, err = cli(["run", str(write_spec(tmp_path, spec))], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work started


def test_grid_and_seeds_expand_in_order_and_set_overrides(tmp_path):
    spec = {"seeds": "3:5", "grid": {"config.alpha": [0.1, 0.5], "config.gamma": [1.0]}, "train": TRAIN}
    path = write_spec(tmp_path, spec, "grid.yaml")
    loaded = load_spec(path, ["train.episodes=7", "out=" + str(tmp_path / "o")])
    assert [(j.seed, j.params["config.alpha"]) for j in loaded.jobs] == [(3, 0.1), (4, 0.1), (3, 0.5), (4, 0.5)]
    assert all(j.block["episodes"] == 7 and j.block["config"]["epsilon"] == 0.2 for j in loaded.jobs)
    assert loaded.jobs[2].out_dir == str(tmp_path / "o" / "alpha=0.5,gamma=1.0" / "seed-3")
    assert load_spec(path).out.name == "grid"  # default output directory: runs/<file stem>


def test_failed_job_does_not_stop_others_and_rerun_skips_finished(tmp_path, capsys):
    spec = {"out": str(tmp_path / "sweep"), "seeds": [0, 1], "grid": {"env_args": [{}, {"no_such_arg": 1}]},
            "train": TRAIN}
    path = write_spec(tmp_path, spec)
    code, out, err = cli(["run", str(path), "--json"], capsys)
    result = json.loads(out)
    assert code == 1 and "no_such_arg" in err
    assert [bool(r.get("failed")) for r in result["runs"]] == [False, False, True, True]
    assert result["runs"][1]["seed"] == 1 and result["runs"][1]["episodes"] == 15
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [j["status"] for j in manifest["jobs"]] == ["finished", "finished", "failed", "failed"]
    code, out, _ = cli(["run", str(path), "--json"], capsys)
    again = json.loads(out)
    assert again["skipped"] == [0, 1]
    assert again["runs"][:2] == result["runs"][:2]


def test_train_seeds_json_in_seed_order_and_processes_match_inline(tmp_path, capsys):
    base = ["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "10", "--eval-episodes", "1",
            "--set", "epsilon=0.3", "--seeds", "2:5", "--json"]
    code, out, _ = cli(base + ["--out", str(tmp_path / "a")], capsys)
    inline = json.loads(out)["runs"]
    assert code == 0 and [r["seed"] for r in inline] == [2, 3, 4]
    assert all(r["config"]["epsilon"] == 0.3 for r in inline)
    code, out, _ = cli(base + ["--out", str(tmp_path / "b"), "--backend", "processes", "--workers", "2"], capsys)
    procs = json.loads(out)["runs"]
    assert [comparable(r) for r in procs] == [comparable(r) for r in inline]


def test_rerun_with_other_settings_in_same_directory_refused(tmp_path, capsys):
    base = ["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "5", "--eval-episodes", "1",
            "--seeds", "0:1", "--out", str(tmp_path / "s"), "--quiet"]
    assert cli(base, capsys)[0] == 0
    code, _, err = cli(base + ["--set", "alpha=0.2"], capsys)
    assert code == 2 and "different experiment" in err


def test_schema_is_generated_from_the_configs(capsys):
    code, out, _ = cli(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "LLMAgentOS experiment spec"
    td = schema["$defs"]["QLearningConfig"]["properties"]
    assert td["alpha"]["default"] == 0.5 and td["alpha"]["description"] == "step size α"
    assert schema["$defs"]["QLearningConfig"]["additionalProperties"] is False
    assert spec_schema() == schema and "train" in JOB_KINDS


def test_validate_spec_api_refuses_two_blocks():
    with pytest.raises(UsageError, match="exactly one job-kind block"):
        validate_spec({"seeds": 1})


def test_resume_a_sweep_directory_reruns_only_unfinished_jobs(tmp_path, capsys):
    spec = {"out": str(tmp_path / "sw"), "seeds": 2, "train": TRAIN}
    code, out, _ = cli(["run", str(write_spec(tmp_path, spec)), "--json"], capsys)
    first = json.loads(out)["runs"]
    (tmp_path / "sw" / "seed-1" / "summary.json").unlink()  # as if seed 1 had been killed
    code, out, _ = cli(["resume", str(tmp_path / "sw"), "--json"], capsys)
    again = json.loads(out)
    assert code == 0 and again["skipped"] == [0]
    assert [comparable(r) for r in again["runs"]] == [comparable(r) for r in first]


def test_field_bounds_are_declared_once_and_read_by_set_yaml_schema_and_algos(capsys):
    """A bound written on the field (``param(..., gt=0, le=1)``) is what ``--set`` and specs enforce, in one
    sentence, what the JSON Schema says and what ``llmagentos algos`` lists."""
    from llmagentos.core.config import apply_overrides, describe
    from llmagentos.learners.dqn import DQNConfig
    from llmagentos.learners.td import TDConfig

    for config, key, value, sentence in ((TDConfig(), "alpha", "0", "alpha must be in (0, 1], got 0.0"),
                                         (TDConfig(), "decay_steps", "0", "decay_steps must be > 0, got 0"),
                                         (DQNConfig(), "batch_size", "0", "dqn batch_size must be positive, got 0"),
                                         (DQNConfig(), "learning_starts", "-1", "dqn learning_starts must be >= 0, got -1")):
        with pytest.raises(UsageError, match=re.escape(sentence)):
            apply_overrides(config, {key: value})
    assert apply_overrides(TDConfig(), {"alpha": "1"}).alpha == 1.0  # the bound itself is inside (0, 1]
    alpha = spec_schema()["$defs"]["QLearningConfig"]["properties"]["alpha"]
    assert alpha["exclusiveMinimum"] == 0 and alpha["maximum"] == 1
    assert {r["name"]: r["bounds"] for r in describe(TDConfig)}["alpha"] == "in (0, 1]"
    code, out, _ = cli(["algos", "q-learning"], capsys)
    assert code == 0 and "alpha: float = 0.5  (in (0, 1])" in out
