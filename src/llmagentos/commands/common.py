"""What every command shares: one JSON object on stdout, the --env-arg flag, the store the command line uses."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from llmagentos.core.config import literal_env_value, parse_key_values


def emit_json(obj: Any) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def env_args_option(f):
    return click.option("--env-arg", "env_args", multiple=True, metavar="KEY=VALUE",
                        help="Keyword argument for gymnasium.make (JSON values: 8, 0.5, true, [1,2]); repeatable.")(f)


def parse_env_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    return {k: literal_env_value(v) for k, v in parse_key_values(pairs, "--env-arg").items()}


def open_store():
    """The store the command line uses: --store, else $LLMAGENTOS_STORE, else ./.llmagentos."""
    from llmagentos.kernel.store import Store

    return Store()
