"""The commands that list what the project ships: its worlds and its algorithms (with their config fields)."""

from __future__ import annotations

import click

from llmagentos.commands.common import emit_json


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also list every Gymnasium id, not only the project's worlds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def envs(show_all: bool, as_json: bool) -> None:
    """List the worlds: the project's own (single- and multi-agent), then Gymnasium's."""
    from llmagentos.kernel.run import available_envs

    from llmagentos.envs.resolve import PLUGIN_IDS

    ids = available_envs()  # loads the gymnasium.envs plugins of installed packages, filling PLUGIN_IDS
    ours = [i for i in ids if i.startswith("llmagentos/")]
    multi = _multiagent_env_ids()
    if as_json:
        emit_json({"single_agent": ours, "multi_agent": multi, "gymnasium": [i for i in ids if i not in ours],
                   "plugins": PLUGIN_IDS})
        return
    click.echo("Single-agent worlds (Gymnasium):")
    for i in ours:
        click.echo(f"  {i}")
    if multi:
        click.echo("Multi-agent worlds (PettingZoo Parallel API):")
        for i in multi:
            click.echo(f"  {i}")
    for plugin, plugin_ids in PLUGIN_IDS.items():
        click.echo(f"Worlds of the installed plugin {plugin} (gymnasium.envs entry point):")
        for i in plugin_ids:
            click.echo(f"  {i}")
    others = [i for i in ids if i not in ours]
    if show_all:
        click.echo("Gymnasium:")
        for i in others:
            click.echo(f"  {i}")
    else:
        click.echo(f"and {len(others)} Gymnasium ids (CartPole-v1, FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...): --all lists them")


def _multiagent_env_ids() -> list[str]:
    try:
        from llmagentos.envs.multiagent import MULTI_AGENT_ENVS
    except ImportError:
        return []
    return sorted(MULTI_AGENT_ENVS)


@click.command()
@click.argument("names", nargs=-1, metavar="[ALGO]...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def algos(names: tuple[str, ...], as_json: bool) -> None:
    """List the algorithms (or only those named) with their config fields, types, defaults and docs."""
    from llmagentos.core.config import describe
    from llmagentos.learners import presets, registry

    entries = [registry.get(name) for name in names] if names else list(registry.ALGORITHMS.values())
    out = []
    for entry in entries:
        named = [{"name": p.name, "envs": list(p.envs), "vector": p.vector, "config": p.config, "summary": p.summary}
                 for p in presets.for_algo(entry.name)]
        out.append({"name": entry.name, "kind": entry.kind, "summary": entry.summary,
                    "config": describe(registry.load(entry.config)), "presets": named})
    if as_json:
        emit_json({"algorithms": out})
        return
    for algo in out:
        click.echo(f"{algo['name']}  [{algo['kind']}]  {algo['summary']}")
        for p in algo["presets"]:
            settings = ", ".join(f"{k}={v}" for k, v in p["config"].items())
            click.echo(f"    preset {p['name']} ({', '.join(p['envs'])}; vector {p['vector']}): {p['summary']} — {settings}")
        for row in algo["config"]:
            bounds = f"  ({row['bounds']})" if row["bounds"] else ""
            click.echo(f"    {row['name']}: {row['type']} = {row['default']!r}{bounds}  — {row['doc']}")
