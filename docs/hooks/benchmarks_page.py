"""mkdocs hook: the benchmark figures (benchmarks/README.md, beside the scripts that make them) become the
site's ``benchmarks.md`` page, and the docs' links to that file point at the page."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SOURCE = Path(__file__).resolve().parents[2] / "benchmarks" / "README.md"


def on_files(files, config):
    files.append(File.generated(config, "benchmarks.md", content=SOURCE.read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown, page, config, files):
    return markdown.replace("](../benchmarks/README.md", "](benchmarks.md")
