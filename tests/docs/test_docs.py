"""Executable documentation: every shell and Python block of README.md and docs/*.md runs, as written.

Each page runs in a fresh temporary folder (with a copy of ``examples/`` and its own store), its blocks in
order, so a page may build on what its earlier blocks made. A block is a fenced block whose language is
``bash``, ``sh``, ``shell`` or ``python``; other fences (``json``, ``yaml``, ``text``, none) are shown output
or file contents and are not run. An HTML comment right above a block may adjust how the test runs it,
while the page keeps showing the real command:

- ``<!-- doc-test: skip REASON -->``: illustration only (a cluster, a fresh machine); the reason is required.
- A fence whose info string says ``file=NAME`` (```` ```python file=mygrid.py ````) is a file the next blocks
  use: it is written into the folder, not run.
- ``<!-- doc-test: replace "OLD" "NEW" ["OLD2" "NEW2" ...] -->``: run the block with each OLD replaced by its
  NEW (a smaller budget, a concrete path for a placeholder); each OLD must occur in the block.

Any other block that fails (non-zero exit status) fails the test, naming the page, the line and the output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
FENCE = re.compile(r"^```(\w*)(.*)$")
FILE_NAME = re.compile(r"\bfile=(\S+)")
DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
BLOCK_TIMEOUT_S = 300


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    directives: list[str] = field(default_factory=list)
    file_name: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the doc-test directives in the comments just above it."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    pending: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            file_name = FILE_NAME.search(fence.group(2))
            found.append(Block(page, start, fence.group(1).lower(), "\n".join(body) + "\n", pending,
                               file_name.group(1) if file_name else None))
            pending = []
        elif DIRECTIVE.search(line):
            pending.extend(m.group(1) for m in DIRECTIVE.finditer(line))
        elif line.strip():
            pending = []  # a directive belongs to the block right below it (blank lines allowed)
        i += 1
    return found


def prepared(block: Block) -> str | None:
    """The code the test runs for ``block`` (None: skipped), after its replacements."""
    code = block.code
    for directive in block.directives:
        if directive.startswith("skip"):
            assert directive[4:].strip(), f"{block.where}: doc-test skip needs a reason"
            return None
        strings = [q.replace('\\"', '"') for q in QUOTED.findall(directive)]
        assert directive.startswith("replace") and strings and len(strings) % 2 == 0, \
            f"{block.where}: unknown doc-test directive {directive!r}"
        for old, new in zip(strings[::2], strings[1::2]):
            assert old in code, f"{block.where}: doc-test replace: {old!r} is not in the block"
            code = code.replace(old, new)
    return code


def run_block(block: Block, code: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LLMAGENTOS_STORE",)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    if block.language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert done.returncode == 0, (f"{block.where}: the documented {block.language} block failed "
                                  f"(exit {done.returncode}):\n{code}\n--- stdout ---\n{done.stdout[-2000:]}"
                                  f"\n--- stderr ---\n{done.stderr[-3000:]}")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_documented_block_runs(page: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for block in blocks(page):
        if block.file_name:
            (tmp_path / block.file_name).write_text(block.code, encoding="utf-8")
            continue
        if block.language not in RUNNABLE:
            assert not block.directives, f"{block.where}: doc-test directives on a block that is not run"
            continue
        block.language = RUNNABLE[block.language]
        code = prepared(block)
        if code is not None:
            run_block(block, code, tmp_path)


def test_directive_parsing(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('<!-- doc-test: replace "--steps 100" "--steps 2" "a \\"b\\"" "c" -->\n```bash\nx --steps 100 a "b"\n```\n\n'
                    "```json\n{}\n```\n<!-- doc-test: skip needs a cluster -->\n\n```python\nboom()\n```\n")
    found = blocks(page)
    assert [b.language for b in found] == ["bash", "json", "python"]
    assert prepared(found[0]) == "x --steps 2 c\n"
    assert prepared(found[2]) is None


def test_every_page_is_linked_from_the_docs_index():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not link {page.name}"
