"""The ``llmagentos`` command line. Every command is a thin shell over the Python API.

Bad input raises :class:`~llmagentos.core.errors.UsageError` anywhere below; :func:`main` turns it
into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from llmagentos.core.config import parse_key_values
from llmagentos.core.errors import UsageError
from llmagentos.commands import catalog, records
from llmagentos.commands.common import emit_json, env_args_option, open_store, parse_env_args
from llmagentos.kernel.progress import print_table  # noqa: F401  (part of the CLI's helpers)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llmagentos")
@click.option("--store", "store_path", default=None, metavar="PATH",
              help="The store's root directory (default: $LLMAGENTOS_STORE, else ./.llmagentos).")
def cli(store_path: str | None) -> None:
    """LLMAgentOS: an operating system for learning agents."""
    if store_path:
        import os

        from llmagentos.kernel.store import STORE_ENV

        before = os.environ.get(STORE_ENV)
        os.environ[STORE_ENV] = store_path  # child processes (sweep workers) see the same store

        def restore() -> None:  # for callers of main() in-process (tests): leave the environment as it was
            if before is None:
                os.environ.pop(STORE_ENV, None)
            else:
                os.environ[STORE_ENV] = before

        click.get_current_context().call_on_close(restore)


@cli.command()
@click.argument("env")
@click.option("--algo", default="value-iteration", show_default=True,
              help="policy-evaluation, policy-iteration or value-iteration.")
@click.option("--gamma", type=float, default=0.99, show_default=True, help="Discount γ (1.0 allowed on episodic MDPs).")
@click.option("--theta", type=float, default=1e-8, show_default=True, help="Stop when the largest value change is below θ.")
@click.option("--policy", default="random", show_default=True,
              help="Policy to evaluate (policy-evaluation): 'random', or a JSON list of one action per state.")
@env_args_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def plan(env: str, algo: str, gamma: float, theta: float, policy: str, env_args: tuple[str, ...], as_json: bool) -> None:
    """Solve ENV's finite MDP (its transition table) by dynamic programming."""
    from llmagentos.learners.planning import plan as run_plan

    result = run_plan(env, algo, gamma=gamma, theta=theta, policy=policy, env_args=parse_env_args(env_args))
    if as_json:
        emit_json(result)
        return
    print_table(["env", "algo", "gamma", "iterations", "seconds", "states"],
                [[result["env"], result["algo"], result["gamma"], result["iterations"], result["seconds"], len(result["values"])]])
    shown = result["values"][:64]
    click.echo("V = " + " ".join(f"{v:.2f}" for v in shown) + (" ..." if len(result["values"]) > 64 else ""))
    click.echo("π = " + " ".join(str(a) for a in result["policy"][:64]) + (" ..." if len(result["policy"]) > 64 else ""))


def train_options(f):
    options = [
        click.option("--env", required=True,
                     help="World: an id (llmagentos envs lists them), module:Id-vN, or module:Class (docs/worlds.md)."),
        click.option("--algo", required=True, help="Algorithm name (llmagentos algos lists them)."),
        click.option("--steps", type=int, default=None, help="Budget in environment steps."),
        click.option("--episodes", type=int, default=None, help="Budget in episodes."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Set a config field; repeatable."),
        click.option("--preset", default=None, metavar="NAME",
                     help="A named preset of the algorithm, e.g. fast (llmagentos algos lists them); --set overrides it."),
        click.option("--vector", type=click.Choice(["sync", "async", "native"]), default=None,
                     help="How num_envs > 1 envs step: sync, async (subprocesses) or native (numpy; CartPole). "
                          "Default: the preset's, else sync."),
        env_args_option,
        click.option("--wrapper", "wrappers", multiple=True, metavar="NAME[:k=v,...]",
                     help="Gymnasium wrapper (a gymnasium.wrappers class or module:Class) applied in order; repeatable."),
        click.option("--eval-every", type=int, default=None, help="Greedy evaluation every K steps (default: budget/20)."),
        click.option("--eval-episodes", type=int, default=10, show_default=True),
        click.option("--threshold", type=float, default=None, help="Return that counts as solved (default: the env's)."),
        click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every K steps, for resume."),
        click.option("--out", default=None, help="Run directory (default: runs/ENV_ALGO_sSEED_TIME)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def print_summary(summary: dict[str, Any]) -> None:
    print_table(["env", "algo", "seed", "steps", "episodes", "eval return", "online (last 100)", "solved at", "steps/s"],
                [[summary["env"], summary["algo"], summary["seed"], summary["steps"], summary["episodes"],
                  summary["eval"]["mean_return"], summary["online"]["mean_return_last_100"], summary["solved_at_step"],
                  round(summary["steps_per_second"])]])
    click.echo(f"run directory: {summary['run_dir']}")
    if summary.get("agent"):
        agent = summary["agent"]
        origin = f"continued from version {agent['continued_from']}" if agent.get("continued_from") else "new agent"
        click.echo(f"agent: {agent['name']} version {agent['version']} ({origin})")


def sweep_options(f):
    options = [
        click.option("--seeds", default=None, metavar="A:B",
                     help="Run seeds A..B-1 (or N: seeds 0..N-1, as in a spec) as separate jobs (a sweep directory with one run per seed)."),
        click.option("--backend", type=click.Choice(["inline", "processes", "ray"]), default="inline", show_default=True,
                     help="Where the jobs run."),
        click.option("--workers", type=int, default=None, help="Worker processes / Ray tasks in flight (default: CPUs)."),
        click.option("--ray-address", default=None, help='Ray cluster to join ("auto", "ray://head:10001").'),
        click.option("--shared-out", is_flag=True,
                     help="With --backend ray: --out is on storage every node mounts, so jobs write there directly "
                          "(default: each run directory comes back to this machine with its job's result)."),
        click.option("--agent", default=None, metavar="NAME",
                     help="Continue the stored agent NAME on this task (created if new) and save it back."),
        click.option("--wait", is_flag=True,
                     help="With --agent: wait while another run trains that agent (default: refuse at once)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@cli.command()
@train_options
@sweep_options
def train(env, algo, steps, episodes, seed, overrides, preset, vector, env_args, wrappers, eval_every, eval_episodes,
          threshold, checkpoint_every, out, quiet, as_json, seeds, backend, workers, ray_address, shared_out, agent,
          wait) -> None:
    """Train an agent on an environment and write a run directory (--seeds A:B: one job per seed)."""
    from llmagentos.envs.make import parse_wrapper
    from llmagentos.jobs.train import train as run_train
    from llmagentos.kernel.run import TrainSpec

    wrappers = [parse_wrapper(w) for w in wrappers]
    if seeds is not None:
        from llmagentos.config import run_spec, train_flags_spec

        if agent is not None:
            raise UsageError("--agent continues one agent in one run; it cannot be combined with --seeds")

        spec = train_flags_spec(dict(env=env, algo=algo, steps=steps, episodes=episodes, overrides=overrides,
                                     env_args=parse_env_args(env_args), wrappers=wrappers, eval_every=eval_every,
                                     eval_episodes=eval_episodes, threshold=threshold,
                                     checkpoint_every=checkpoint_every, out=out, preset=preset, vector=vector),
                                seeds=seeds, backend=backend, workers=workers, ray_address=ray_address,
                                shared_out=shared_out)
        emit_sweep(run_spec(spec, quiet=quiet or as_json, store=open_store()), as_json)
        return
    if backend != "inline" or workers is not None or ray_address is not None or shared_out:
        raise UsageError("--backend, --workers, --ray-address and --shared-out schedule several jobs: "
                         "give --seeds A:B as well")
    spec = TrainSpec(env=env, algo=algo, seed=seed, steps=steps, episodes=episodes,
                     config=parse_key_values(overrides, "--set"), env_args=parse_env_args(env_args),
                     wrappers=wrappers, eval_every=eval_every, eval_episodes=eval_episodes, threshold=threshold,
                     checkpoint_every=checkpoint_every, out=out, agent=agent, preset=preset, vector=vector)
    summary = run_train(spec, quiet=quiet, store=open_store(), wait=wait)
    emit_json(summary) if as_json else print_summary(summary)


@cli.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def resume(run_dir: str, quiet: bool, as_json: bool) -> None:
    """Continue a stopped or killed run (its directory, or its id in llmagentos runs ls) from its last checkpoint, or a sweep."""
    from pathlib import Path

    from llmagentos.jobs.train import resume as run_resume

    store = open_store()
    if not Path(run_dir).is_dir() and run_dir.isdigit():
        run_dir = store.require_run(run_dir)["run_dir"]
    if (Path(run_dir) / "sweep.json").exists():  # a sweep: its spec again; finished jobs are skipped, killed ones resume
        from llmagentos.config import run_spec, sweep_spec

        emit_sweep(run_spec(sweep_spec(run_dir), quiet=quiet or as_json, store=store), as_json)
        return
    summary = run_resume(run_dir, quiet=quiet, store=store)
    emit_json(summary) if as_json else print_summary(summary)


def emit_sweep(result: dict[str, Any], as_json: bool) -> None:
    """Print a sweep's result (``{"runs": [...]}`` with --json, a table otherwise); exit 1 if a job failed."""
    if as_json:
        emit_json(result)
    else:
        rows = []
        grid = result.get("grid") or [{"params": {}}] * len(result["runs"])
        for run, job in zip(result["runs"], grid):
            params = ",".join(f"{k.split('.')[-1]}={v}" for k, v in job["params"].items()) or "-"
            if run.get("failed"):
                rows.append([run.get("seed"), params, "FAILED", None, None, run["error"][:60]])
            else:
                rows.append([run.get("seed"), params, "ok", run.get("steps"),
                             (run.get("eval") or {}).get("mean_return"), run.get("run_dir")])
        print_table(["seed", "params", "status", "steps", "eval return", "run directory / error"], rows)
        click.echo(f"sweep directory: {result['out']} ({len(result['skipped'])} skipped as already finished, "
                   f"{len(result['failed'])} failed)")
        from llmagentos.jobs import job_kind

        job_kind(result["kind"]).show(result)  # the kind's own tables: outcomes, adaptation errors, lifelong metrics
    if result["failed"]:
        for failed in result["failed"]:
            click.echo(f"llmagentos: job {failed['job']} (seed {failed['seed']}) failed: {failed['error']}", err=True)
        sys.exit(1)


@cli.command("run")
@click.argument("spec_file", metavar="SPEC.yaml")
@click.option("--set", "sets", multiple=True, metavar="A.B=C", help="Override a spec value by its dotted path; repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def run_command(spec_file: str, sets: tuple[str, ...], quiet: bool, as_json: bool) -> None:
    """Run an experiment spec (YAML): every grid point × seed as a job on the spec's backend."""
    from llmagentos.config import load_spec, run_spec

    spec = load_spec(spec_file, sets)
    emit_sweep(run_spec(spec, quiet=quiet or as_json, store=open_store()), as_json)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of experiment specs (generated from the algorithm configs)."""
    from llmagentos.config import spec_schema

    emit_json(spec_schema())


@cli.command("eval")
@click.argument("run_dir")
@click.option("--episodes", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def eval_command(run_dir: str, episodes: int, as_json: bool) -> None:
    """Evaluate a trained run's agent greedily."""
    from llmagentos.jobs.train import evaluate_run

    result = evaluate_run(run_dir, episodes)
    if as_json:
        emit_json(result)
    else:
        print_table(["env", "algo", "episodes", "mean return", "std"],
                    [[result["env"], result["algo"], result["episodes"], result["mean_return"], result["std_return"]]])


@cli.command()
@click.option("--cliff", is_flag=True, help="Run the foundation's demo instead: Sarsa against Q-learning on CliffWalking.")
@click.option("--seeds", type=int, default=None, help="Seeds per strategy (default 3; --world minatar: 1; --cliff: 5 per algorithm).")
@click.option("--world", type=click.Choice(["goal-grid", "minatar"]), default="goal-grid", show_default=True,
              help="The stream: four goal-grid goals, or Continual MinAtar's five games (needs llmagentos[pixels]).")
@click.option("--steps-per-task", type=int, default=None, help="Environment steps on each task of the stream (default 2500; minatar: 6000).")
@click.option("--episodes", type=int, default=500, show_default=True, help="--cliff: training episodes per run.")
@click.option("--backend", default="processes", show_default=True, help="Scheduler backend: inline, processes or ray.")
@click.option("--workers", type=int, default=4, show_default=True, help="Jobs run at once (processes, ray); more than the cores keeps the demo quick on a shared machine.")
@click.option("--out", default=None, help="Where the plots and runs go (default runs/demo-lifelong; --cliff: runs/demo).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def demo(cliff: bool, world: str, seeds: int | None, steps_per_task: int | None, episodes: int, backend: str, workers: int,
         out: str | None, quiet: bool, as_json: bool) -> None:
    """The main job: a lifelong agent through a stream of tasks — fine-tuning, EWC and replay side by side."""
    if cliff:
        from llmagentos.jobs.demo import cliff_walking_demo

        result = cliff_walking_demo(seeds=seeds or 5, episodes=episodes, out=out or "runs/demo", quiet=quiet or as_json,
                                    table=not as_json)
    else:
        from llmagentos.jobs.demo import DEMO_WORLDS, lifelong_demo

        defaults = DEMO_WORLDS[world]
        result = lifelong_demo(seeds=defaults["seeds"] if seeds is None else seeds,
                               steps_per_task=defaults["steps_per_task"] if steps_per_task is None else steps_per_task,
                               out=out or "runs/demo-lifelong", backend=backend, workers=workers, quiet=quiet or as_json,
                               table=not as_json, world=world)
    if as_json:
        emit_json(result)


@cli.command()
@click.option("--source", required=True, help="Run directory of the trained source agent.")
@click.option("--env", required=True, help="Target task's Gymnasium id.")
@env_args_option
@click.option("--mode", type=click.Choice(["full", "trunk", "prior"]), default="full", show_default=True,
              help="Copy the whole network (or Q table), all but the output layers, or follow the source while exploring.")
@click.option("--steps", type=int, required=True, help="Training steps of each arm on each seed.")
@click.option("--seeds", default="0:5", show_default=True, help="Seeds 'A:B' (A..B-1), or N (seeds 0..N-1, as in a spec).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config field for both arms; repeatable.")
@click.option("--eval-every", type=int, default=None, help="Greedy evaluation every K steps (default: steps/20).")
@click.option("--eval-episodes", type=int, default=10, show_default=True)
@click.option("--threshold", type=float, default=None, help="Return for time-to-threshold (default: the env's, else 90% of scratch's rise).")
@click.option("--state-map", default=None, help="Tabular: JSON list giving the source state of each target state.")
@click.option("--out", default=None, help="Directory for the PNG (default: runs/transfer_ENV_MODE_TIME).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def transfer(source, env, env_args, mode, steps, seeds, overrides, eval_every, eval_episodes, threshold, state_map,
             out, quiet, as_json) -> None:
    """Transfer a trained agent to a target task and compare with learning from scratch (Taylor & Stone, 2009)."""
    from llmagentos.config import parse_seeds
    from llmagentos.jobs.transfer import print_transfer, run_transfer

    try:
        mapping = json.loads(state_map) if state_map else None
    except json.JSONDecodeError:
        raise UsageError(f"--state-map must be a JSON list of source states, got {state_map!r}") from None
    result = run_transfer(source, env, parse_env_args(env_args), mode=mode, steps=steps, seeds=parse_seeds(seeds, "--seeds"),
                          overrides=parse_key_values(overrides, "--set"), eval_every=eval_every,
                          eval_episodes=eval_episodes, threshold=threshold, state_map=mapping, out=out,
                          quiet=quiet or as_json)
    emit_json(result) if as_json else print_transfer(result)


for command in (catalog.envs, catalog.algos, records.agents, records.store_group, records.runs, records.report, records.ui):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    import os

    if os.getcwd() not in sys.path and "" not in sys.path:  # the current directory is importable, as with python -m
        sys.path.insert(0, os.getcwd())
    from llmagentos.kernel.signals import stop_on_signals

    try:
        with stop_on_signals():
            guarded_main(argv)
    except KeyboardInterrupt as stop:  # SIGINT or SIGTERM: the kernel has recorded the stop; one line, the shell's status
        from llmagentos.kernel.signals import exit_status, signal_name

        click.echo(f"llmagentos: stopped by {signal_name(stop)}"
                   " (a sweep or checkpointed run continues with llmagentos resume)", err=True)
        sys.exit(exit_status(stop))


def guarded_main(argv: list[str] | None = None) -> None:
    """:func:`cli_main` with a last resort: an unexpected exception is one line and a crash report, exit 1."""
    try:
        cli_main(argv)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as err:  # noqa: BLE001  (a bug must still end with one line, never a bare traceback)
        report = write_crash_report(err, argv)
        click.echo(f"llmagentos: internal error: {type(err).__name__}: {one_line(str(err)[:200])} "
                   f"(this is a bug; crash report: {report})", err=True)
        sys.exit(1)


def write_crash_report(err: BaseException, argv: list[str] | None) -> str:
    """Write the traceback and the command line to a new file in the temporary folder; returns its path."""
    import os
    import tempfile
    import traceback

    from llmagentos import __version__

    text = (f"llmagentos {__version__} crashed\ncommand: {sys.argv[0] if argv is None else 'llmagentos'} "
            f"{' '.join(map(str, sys.argv[1:] if argv is None else argv))}\n\n"
            + "".join(traceback.format_exception(type(err), err, err.__traceback__)))
    fd, path = tempfile.mkstemp(prefix="llmagentos-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
        f.write(text)
    return path


#: characters str.splitlines breaks on: a message quoting input that holds one must still be one line
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(message: str) -> str:
    """``message`` with its line breaks escaped (``\\n``), so an error quoting any input stays one line."""
    return message.translate(_LINE_BREAKS)


def cli_main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="llmagentos", standalone_mode=False)
    except UsageError as err:
        click.echo(f"llmagentos: error: {one_line(str(err))}", err=True)
        sys.exit(2)
    except click.exceptions.UsageError as err:
        click.echo(f"llmagentos: error: {one_line(err.format_message())}", err=True)
        sys.exit(2)
    except click.exceptions.Abort as abort:
        if isinstance(abort.__cause__, KeyboardInterrupt):  # a signal: main() names it and exits with its status
            raise abort.__cause__ from None
        click.echo("llmagentos: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.ClickException as err:
        click.echo(f"llmagentos: error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
