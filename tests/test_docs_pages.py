"""The pages "Your own worlds", "Python API" and "Observations" run as written: every shell and Python block, in order, in a fresh
folder (a block whose info string says ``file=NAME`` is a file the next blocks use, written there instead)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["worlds.md", "python_api.md", "observations.md"]
FENCE = re.compile(r"^```(\S+)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(page: str) -> list[tuple[str, str | None, str]]:
    """(language, file name or None, code) of each fenced block of the page, in order."""
    out = []
    for lang, info, code in FENCE.findall((DOCS / page).read_text()):
        name = re.search(r"file=(\S+)", info)
        out.append((lang, name.group(1) if name else None, code))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_every_shell_and_python_block_runs_as_written(page, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for i, (lang, name, code) in enumerate(blocks(page)):
        if name:
            (tmp_path / name).write_text(code)
            continue
        if lang == "bash":
            command = ["bash", "-euo", "pipefail", "-c", code]
        elif lang == "python":
            script = tmp_path / f"block_{i}.py"
            script.write_text(code)
            command = [sys.executable, str(script)]
        else:  # configuration shown for reading (toml), not a command
            continue
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{page} block {i} failed:\n{code}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran += 1
    assert ran >= 4


def test_the_pages_are_linked_from_the_docs_index_and_the_readme():
    index = (DOCS / "index.md").read_text()
    readme = (DOCS.parent / "README.md").read_text()
    for page in PAGES:
        assert f"({page})" in index and f"docs/{page}" in readme
