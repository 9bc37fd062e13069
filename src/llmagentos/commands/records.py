"""The commands over what jobs leave behind: stored agents, the store itself, recorded runs, reports, the dashboard."""

from __future__ import annotations

import sys
from typing import Any

import click

from llmagentos.commands.common import emit_json, open_store
from llmagentos.kernel.progress import print_table


@click.group()
def agents() -> None:
    """Stored agents: list, show (history of tasks, runs and versions), remove."""


@agents.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def agents_ls(as_json: bool) -> None:
    """List the agents in the store."""
    records = open_store().agents()
    if as_json:
        emit_json({"agents": [r.to_json() for r in records]})
        return
    print_table(["name", "algo", "version", "observation space", "action space", "updated"],
                [[r.name, r.algo, r.version, r.observation_space, r.action_space, _when(r.updated)] for r in records])


@agents.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def agents_show(name: str, as_json: bool) -> None:
    """An agent's versions with the task and run behind each, its runs, its knowledge entries and blob checks."""
    store = open_store()
    record = store.require_agent(name)
    history = store.agent_history(name)
    runs = store.runs(agent=name)
    knowledge = store.query_knowledge(agent=name)
    problems = [p for p in store.verify() if p.startswith(f"agent {name!r} ")]
    if as_json:
        emit_json({"agent": record.to_json(), "history": history, "runs": runs, "knowledge": knowledge,
                   "problems": problems})
    else:
        click.echo(f"{record.name}: {record.algo}, version {record.version}, "
                   f"observations {record.observation_space}, actions {record.action_space}")
        print_table(["version", "created", "env", "task", "run"],
                    [[h["version"], _when(h["created"]), h["env"], h["task_id"], h["run_dir"]] for h in history])
        if knowledge:
            print_table(["knowledge", "task", "descriptor", "score", "metric"],
                        [[k["id"], k["task_id"], k["descriptor"], k["score"], k["metric"]] for k in knowledge])
    for problem in problems:
        click.echo(f"llmagentos: error: {problem}", err=True)
    if problems:
        sys.exit(1)


@agents.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def agents_rm(name: str, as_json: bool) -> None:
    """Remove an agent and its blobs (its runs stay in the record)."""
    open_store().remove_agent(name)
    emit_json({"removed": name}) if as_json else click.echo(f"removed agent {name}")


@click.group("store")
def store_group() -> None:
    """The store itself: check its index and blobs, or rebuild a lost or corrupted index."""


@store_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def store_check(as_json: bool) -> None:
    """Report every problem of the store (unreadable index, missing or corrupted blobs, blobs not indexed); exit 1 if any."""
    from llmagentos.kernel.store import default_root
    from llmagentos.kernel.store_repair import check_store

    problems = check_store()
    if as_json:
        emit_json({"store": str(default_root()), "ok": not problems, "problems": problems})
    else:
        click.echo(f"store {default_root()}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    for problem in problems:
        click.echo(f"llmagentos: problem: {problem}", err=True)
    if problems:
        sys.exit(1)


@store_group.command("rebuild")
@click.option("--runs", "run_roots", multiple=True, default=("runs",), show_default=True, metavar="DIR",
              help="Where to look for run and sweep directories to re-index; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def store_rebuild(run_roots: tuple[str, ...], as_json: bool) -> None:
    """Re-index the store from its agent blobs and the run directories under --runs (the old index is kept aside)."""
    from llmagentos.kernel.store_repair import rebuild_store

    result = rebuild_store(None, list(run_roots))
    if as_json:
        emit_json(result)
        return
    click.echo(f"store {result['store']}: {result['agent_versions']} agent versions and {result['runs']} runs indexed"
               + (f"; the old index is kept as {result['old_index']}" if result["old_index"] else ""))


@click.group()
def runs() -> None:
    """Runs recorded in the store: list and show."""


@runs.command("ls")
@click.option("--agent", default=None, help="Only this agent's runs.")
@click.option("--status", default=None, help="Only runs with this status (running, finished, failed, stopped).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def runs_ls(agent: str | None, status: str | None, as_json: bool) -> None:
    """List the recorded runs, oldest first."""
    records = open_store().runs(agent=agent, status=status)
    if as_json:
        emit_json({"runs": [{k: v for k, v in r.items() if k != "summary"} | {"eval": _eval_return(r)}
                            for r in records]})
        return
    print_table(["id", "status", "env", "algo", "seed", "agent", "eval return", "run directory"],
                [[r["id"], r["status"], r["env"], r["algo"], r["seed"], r["agent"], _eval_return(r), r["run_dir"]]
                 for r in records])


@runs.command("show")
@click.argument("run", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def runs_show(run: str, as_json: bool) -> None:
    """One run (its id or directory) with its summary."""
    record = open_store().require_run(run)
    if as_json:
        emit_json(record)
        return
    print_table(["id", "status", "env", "algo", "seed", "agent", "eval return", "updated"],
                [[record["id"], record["status"], record["env"], record["algo"], record["seed"], record["agent"],
                  _eval_return(record), _when(record["updated"])]])
    click.echo(f"run directory: {record['run_dir']}")
    if record["error"]:
        click.echo(f"error: {record['error']}")


def _eval_return(record: dict[str, Any]) -> float | None:
    summary = record.get("summary") or {}
    return (summary.get("eval") or {}).get("mean_return") if isinstance(summary.get("eval"), dict) else None


def _when(timestamp: float | None) -> str:
    import time

    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


@click.command()
@click.argument("path", metavar="RUN_OR_SWEEP")
@click.option("--out", default=None, help="Where the PNG plots go (default: RUN_OR_SWEEP/report).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def report(path: str, out: str | None, as_json: bool) -> None:
    """Mean ± 95 % confidence interval over seeds, per grid point, and PNG learning curves with shaded intervals."""
    from pathlib import Path

    from llmagentos.kernel.report import make_report, report_rows

    if not Path(path).is_dir() and path.isdigit():
        path = open_store().require_run(path)["run_dir"]  # a run id from llmagentos runs ls
    result = make_report(path, out=out)
    if as_json:
        emit_json(result)
        return
    headers, rows = report_rows(result)
    print_table(headers, rows)
    for plot in result["plots"]:
        click.echo(f"plot: {plot}")


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only; the dashboard has no login).")
@click.option("--runs", "roots", multiple=True, metavar="DIR",
              help="Where to look for sweeps, lifelong and transfer results besides the recorded runs' own "
                   "directories (default: ./runs); repeatable.")
def ui(port: int, host: str, roots: tuple[str, ...]) -> None:
    """A local web dashboard over the store and run directories (read-only): agents, runs, live curves, sweeps,
    lifelong R matrices, multi-agent outcomes, meta-learning and transfer curves."""
    from llmagentos.ui.server import serve

    serve(host=host, port=port, roots=list(roots) or ["runs"])
