"""Issue 17: generated specs and command lines — valid, broken, hostile — end with exit 0 or 2 and at most one
error line, never a traceback, and write nothing outside the folder the test gives them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import cli

#: bounded so the whole file runs in about half a minute on a busy machine
EXAMPLES = 20
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BASE = {"train": {"env": "CliffWalking-v1", "algo": "q-learning", "steps": 10, "eval_episodes": 1}}

hostile_numbers = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "-inf", "1e23", "", "0x10", "١٢"]))
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
#: places a spec may point at: inside the test's folder, or places that must be refused
paths = st.one_of(st.sampled_from(["/", "", ".", "/proc/no/such/dir", "sub/dir", "x" * 300, "../", "a/../.."]),
                  st.text(alphabet="abc/._-é", min_size=1, max_size=12).filter(lambda p: not p.startswith(("/", ".."))
                                                                               and "/.." not in p))
names = st.one_of(st.text(max_size=30), st.sampled_from(["../../x", "/etc/passwd", "a" * 300, "..", "ok-name"]))


@st.composite
def spec_texts(draw) -> bytes:
    """A spec: the valid base with some fields replaced, raw text, raw bytes, or an alias/nesting construction."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "text", "bytes", "aliases", "nested"]))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "aliases":
        width, depth = draw(st.integers(1, 12)), draw(st.integers(1, 10))
        lines = ["a0: &a0 [" + ",".join(["x"] * width) + "]"]
        lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
        return ("\n".join(lines) + "\n" + yaml.safe_dump(BASE)).encode()
    if kind == "nested":
        depth = draw(st.integers(1, 5000))
        return (yaml.safe_dump(BASE) + "description: " + "[" * depth + "]" * depth + "\n").encode()
    spec = {"train": dict(BASE["train"])}
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["train.steps", "train.seed_extra", "train.config.alpha", "train.config.epsilon",
                                      "train.env_args", "train.threshold", "seeds", "grid", "workers", "name",
                                      "out", "backend", "train.env", "train.algo"]))
        value = draw(names if where == "name" else paths if where == "out" else values)
        node, *rest = where.split(".")
        if rest:
            target = spec.setdefault(node, {})
            for part in rest[:-1]:
                target = target.setdefault(part, {}) if isinstance(target.get(part, {}), dict) else {}
            target[rest[-1]] = value
        else:
            spec[node] = value
    spec.setdefault("backend", "inline")
    return yaml.safe_dump(spec, allow_unicode=True).encode()


FLAGS = ["--env", "--algo", "--steps", "--seed", "--seeds", "--set", "--env-arg", "--threshold", "--out", "--agent",
         "--eval-episodes", "--checkpoint-every", "--backend", "--workers", "--json", "--quiet", "--episodes"]
ARG_VALUES = st.one_of(st.sampled_from(["CliffWalking-v1", "q-learning", "dqn", "20", "-1", "nan", "inf", "1e23",
                                        "0:2", "3", "-3:2", "alpha=nan", "initial_value=inf", "map_name=99x99",
                                        "x=NaN", "/", "..", "../../x", "a" * 300, "processes", "", "é"]),
                       paths, st.text(max_size=12))


@st.composite
def command_lines(draw) -> list[str]:
    command = draw(st.sampled_from([["train"], ["train"], ["run"], ["plan"], ["eval"], ["resume"], ["agents", "show"],
                                    ["runs", "show"], ["report"], ["schema"], ["agents", "ls"]]))
    argv = list(command)
    if command == ["train"]:  # mostly the flags a run needs, so that generated values reach deep
        argv += ["--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "20", "--eval-episodes", "1"]
    for _ in range(draw(st.integers(0, 4))):
        flag = draw(st.sampled_from(FLAGS + ["POSITIONAL"]))
        value = draw(ARG_VALUES)
        if flag == "--episodes" and value.isdigit():
            value = "-" + value  # an episode budget on an untrained CliffWalking agent can run for minutes
        if flag == "--steps" and value.isdigit() and int(value) > 100:
            value = "20"
        argv += [value] if flag == "POSITIONAL" else [flag] if flag in ("--json", "--quiet") else [flag, value]
    return argv


def snapshot(places: list[Path]) -> dict[Path, set[str]]:
    return {p: set(os.listdir(p)) for p in places if p.is_dir()}


def run_contained(tmp_path: Path, capsys, argv_for) -> None:
    """Run ``argv_for(folder)`` inside a fresh folder with the store and temp files there; check the contract."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        folder = Path(folder)
        # (the shared temporary folder is not watched: other processes on the machine write there)
        watched = [Path("/"), Path.cwd(), Path.home(), Path.cwd().parent]
        before = snapshot(watched)
        here, old_store, old_tmp = Path.cwd(), os.environ.get("LLMAGENTOS_STORE"), tempfile.tempdir
        os.chdir(folder)
        os.environ["LLMAGENTOS_STORE"] = str(folder / "store")
        tempfile.tempdir = str(folder)
        try:
            argv = argv_for(folder)
            code, _, err = cli(argv, capsys)
        finally:
            os.chdir(here)
            tempfile.tempdir = old_tmp
            if old_store is None:
                os.environ.pop("LLMAGENTOS_STORE", None)
            else:
                os.environ["LLMAGENTOS_STORE"] = old_store
        lines = [line for line in err.splitlines() if line.strip()]
        assert code in (0, 2), (argv, err)
        assert "Traceback" not in err, (argv, err)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("llmagentos: error: "), (argv, err)
        after = snapshot(watched)
        for place, names in after.items():
            new = names - before.get(place, set()) - {folder.name}
            assert not new, (argv, place, new)


@FUZZ
@given(text=spec_texts())
def test_generated_specs_end_in_exit_0_or_2_and_stay_in_their_folder(tmp_path, capsys, text):
    def argv(folder: Path) -> list[str]:
        (folder / "spec.yaml").write_bytes(text)
        return ["run", str(folder / "spec.yaml"), "--quiet"]

    run_contained(tmp_path, capsys, argv)


@FUZZ
@given(args=command_lines())
def test_generated_command_lines_end_in_exit_0_or_2_and_stay_in_their_folder(tmp_path, capsys, args):
    run_contained(tmp_path, capsys, lambda folder: args)
