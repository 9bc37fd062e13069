"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from llmagentos.cli import main
from llmagentos.kernel.run import VOLATILE_KEYS


def cli(args, capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``llmagentos ARGS``, run in this process."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exit_:
        code = exit_.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def comparable(summary: dict) -> dict:
    """A summary without timings and paths, which legitimately differ between identical runs."""
    out = {k: v for k, v in summary.items() if k not in VOLATILE_KEYS}
    out["curve"] = [{k: v for k, v in p.items() if k != "wall_seconds"} for p in summary["curve"]]
    return out


def assert_spec_refused(tmp_path, capsys, spec_text: str, override: str, message: str) -> None:
    """``llmagentos run`` on the spec with ``--set OVERRIDE`` exits 2 naming ``message`` and creates no output directory."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    code, _, err = cli(["run", str(spec), "--set", f"out={tmp_path / 'out'}", "--set", override], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "out").exists()


#: the ``llmagentos`` command of this interpreter's environment
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("llmagentos"))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``llmagentos ARGS`` in a new process whose working directory is ``cwd`` (not put on the path by Python)."""
    return subprocess.run([CONSOLE_SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def one_json(proc: subprocess.CompletedProcess) -> dict:
    """The JSON a successful command printed."""
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def interrupt(run_dir: Path, checkpoint: str) -> None:
    """Make a finished run look killed after ``checkpoint``: its outputs gone, latest.json pointing there."""
    for name in ("summary.json", "agent.safetensors", "agent.json"):
        (run_dir / name).unlink()
    step = int(checkpoint.split("-")[1])
    (run_dir / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": checkpoint, "step": step}))


@contextlib.contextmanager
def importable_module(folder: Path, name: str, source: str) -> Iterator[Path]:
    """``folder/name.py`` holding ``source``, importable by this process while the context lasts."""
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """The CLI in this process: its exit status and what it printed on stdout and stderr."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
