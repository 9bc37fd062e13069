"""Small conventions a documented command relies on: typed --set values in job.json, file-safe run folder
names, variants of an example in their own folder, one number format in a table column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import cli

from llmagentos.kernel.run import path_safe

ROOT = Path(__file__).resolve().parents[2]


def test_set_values_are_stored_typed_in_job_json(tmp_path, capsys):
    code, _, _ = cli(["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "5", "--set", "alpha=0.5",
                      "--set", "epsilon=0.05", "--set", "exploration=boltzmann", "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    job = json.loads((tmp_path / "run" / "job.json").read_text())
    assert job["config"] == {"alpha": 0.5, "epsilon": 0.05, "exploration": "boltzmann"}


def test_run_folder_names_are_safe_for_any_env_id():
    assert path_safe("mypkg.envs:Chain-v0") == "mypkg.envs-Chain-v0"
    assert path_safe("ALE/Pong-v5") == "ALE-Pong-v5"
    assert path_safe("../../etc") == "etc"
    assert "/" not in path_safe("a/b\\c d:e") and ":" not in path_safe("a:b")


def test_default_run_folder_has_no_colon_or_slash(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(["train", "--env", "llmagentos/GridWorld4x4-v0", "--algo", "q-learning", "--steps", "50",
                        "--json"], capsys)
    assert code == 0
    run_dir = Path(json.loads(out)["run_dir"])
    assert run_dir.parent == Path("runs") and run_dir.name.startswith("llmagentos-GridWorld4x4-v0_q-learning_s0_")


def test_documented_variants_of_an_example_run_one_after_another(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    base = ["run", "examples/nes_cartpole.yaml", "--set", "seeds=1", "--set", "meta.config.generations=2", "--json"]
    code, out, _ = cli(base, capsys)
    assert code == 0 and json.loads(out)["out"] == "runs/nes-cartpole_generations=2"
    code, out, _ = cli(base + ["--set", "meta.config.method=openai-es"], capsys)
    assert code == 0 and json.loads(out)["out"] == "runs/nes-cartpole_generations=2,method=openai-es"
    # where the population is evaluated changes nothing it computes: the same experiment, its run is reused
    code, out, _ = cli(base + ["--set", "meta.population_backend=processes"], capsys)
    assert code == 0 and json.loads(out)["out"] == "runs/nes-cartpole_generations=2"
    assert json.loads(out)["skipped"] == [0]


def test_steps_per_second_column_is_a_whole_number(tmp_path, capsys):
    code, out, _ = cli(["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "3",
                        "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    value = out.splitlines()[2].split()[-1]
    assert value.isdigit(), out


def test_algos_takes_the_names_to_show(capsys):
    code, out, _ = cli(["algos", "ppo", "--json"], capsys)
    assert code == 0 and [a["name"] for a in json.loads(out)["algorithms"]] == ["ppo"]
    code, _, err = cli(["algos", "ppx"], capsys)
    assert code == 2 and "unknown algorithm 'ppx'" in err


def test_independent_ppo_learners_run_on_a_matrix_game_and_a_bad_config_is_refused_before_any_folder(tmp_path, capsys):
    base = ["train", "--env", "llmagentos/ClimbingGame-v0", "--algo", "il", "--set", "learner=ppo", "--steps", "512",
            "--eval-episodes", "1", "--seeds", "0:2"]
    code, out, err = cli(base + ["--out", str(tmp_path / "good"), "--json"], capsys)
    assert code == 0, err
    assert [r["seed"] for r in json.loads(out)["runs"]] == [0, 1] and not json.loads(out)["failed"]
    code, _, err = cli(base + ["--set", 'learner_config={"batch_size": 999}', "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "batch_size must divide" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
