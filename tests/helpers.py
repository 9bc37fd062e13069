"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

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
