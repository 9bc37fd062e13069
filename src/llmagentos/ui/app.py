"""The dashboard's web application: HTML pages drawn in the browser from a read-only JSON API.

Pages (each a small HTML shell; ``static/app.js`` fetches the JSON and draws tables and Plotly charts):

======================  =====================================================================
``/agents``             every agent in the store
``/agents/NAME``        its timeline of versions and runs, lineage, latest score per task
``/runs``               the runs table: filters (kind, agent, env, algorithm, status, dates), pages
``/runs/ID``            learning curve (live while running), evaluation points, config, summary, files
``/compare?ids=1,2``    several runs overlaid: mean ± 95 % CI of their evaluation curves
``/results?kind=K``     sweeps, lifelong, multi-agent, meta and transfer result directories
``/result?path=P``      one of them: grid table and bands, R matrices, outcomes, adaptation, transfer
======================  =====================================================================

The API under ``/api/`` returns the same data as JSON; ``/files/ID/PATH`` serves a file from inside run
ID's directory and answers 404 for anything else (``..``, absolute paths, links out of it).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from llmagentos.ui.data import PAGE_SIZE, StoreReader, overlay, parse_date, read_metrics, run_details
from llmagentos.ui.results import Results

STATIC = Path(__file__).parent / "static"
#: job kinds the results pages list, with their navigation labels
RESULT_KINDS = {"sweep": "Sweeps", "lifelong": "Lifelong", "multiagent": "Multi-agent", "meta": "Meta",
                "transfer": "Transfer", "multitask": "Multi-task"}


def plotly_js() -> Path:
    """plotly.js as shipped inside the ``plotly`` Python package: served locally, never from a CDN."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class ApiResponse(JSONResponse):
    """JSON with NaN and infinities as null (summaries may hold them; browsers' JSON.parse refuses them)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _not_found(what: str) -> Response:
    return ApiResponse({"error": what}, status_code=404)


def _int(text: str | None, default: int, name: str) -> int:
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


def create_app(store_root: str | Path | None = None, roots: list[str | Path] | None = None,
               host: str = "127.0.0.1") -> Starlette:
    """The dashboard over the store at ``store_root`` and the result directories under ``roots``, served on ``host``.

    Requests must name this machine (or ``host``) in their Host header: a web page elsewhere cannot reach the
    dashboard through a DNS name it points at 127.0.0.1 (DNS rebinding). Listening on all addresses
    (0.0.0.0, ::) accepts any name.
    """
    store = StoreReader(store_root)
    results = Results(store, [Path(r) for r in (roots if roots is not None else ["runs"])])

    def page(view: str, title: str, **data: Any) -> HTMLResponse:
        nav = "".join(f'<a href="{href}">{label}</a>' for href, label in
                      [("/agents", "Agents"), ("/runs", "Runs")]
                      + [(f"/results?kind={k}", v) for k, v in RESULT_KINDS.items()])
        attrs = " ".join(f'data-{k}="{html.escape(str(v), quote=True)}"' for k, v in data.items())
        body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · LLMAgentOS'
                '</title><link rel="stylesheet" href="/static/style.css"><script src="/static/plotly.min.js"></script>'
                f'</head><body><header><b>LLMAgentOS</b>{nav}<span class="store">store: '
                f'{html.escape(str(store.root))}</span></header><main id="app" data-page="{view}" {attrs}></main>'
                '<script src="/static/app.js"></script></body></html>')
        return HTMLResponse(body)

    # -- pages -----------------------------------------------------------------------------------
    async def home(request: Request) -> Response:
        return RedirectResponse("/agents")

    async def agents_page(request: Request) -> Response:
        return page("agents", "Agents")

    async def agent_page(request: Request) -> Response:
        return page("agent", request.path_params["name"], name=request.path_params["name"])

    async def runs_page(request: Request) -> Response:
        return page("runs", "Runs")

    async def run_page(request: Request) -> Response:
        return page("run", f"Run {request.path_params['id']}", id=request.path_params["id"])

    async def compare_page(request: Request) -> Response:
        return page("compare", "Compare runs", ids=request.query_params.get("ids", ""))

    async def results_page(request: Request) -> Response:
        kind = request.query_params.get("kind", "")
        return page("results", RESULT_KINDS.get(kind, "Results"), kind=kind)

    async def result_page(request: Request) -> Response:
        path = request.query_params.get("path", "")
        return page("result", Path(path).name or "Result", path=path)

    # -- the JSON API ----------------------------------------------------------------------------
    def api_agents(request: Request) -> Response:
        return ApiResponse({"agents": store.agents()})

    def api_agent(request: Request) -> Response:
        found = store.agent(request.path_params["name"])
        return ApiResponse(found) if found else _not_found(f"no agent named {request.path_params['name']!r}")

    def api_runs(request: Request) -> Response:
        q = request.query_params
        try:
            found = store.runs(agent=q.get("agent"), kind=q.get("kind"), env=q.get("env"), algo=q.get("algo"),
                               status=q.get("status"), since=parse_date(q.get("since")),
                               until=parse_date(q.get("until"), end=True), page=_int(q.get("page"), 1, "page"),
                               per_page=_int(q.get("per_page"), PAGE_SIZE, "per_page"))
        except ValueError as err:
            return ApiResponse({"error": str(err)}, status_code=400)
        return ApiResponse(found)

    def api_run(request: Request) -> Response:
        record = store.run(request.path_params["id"])
        return ApiResponse(run_details(record)) if record else _not_found(f"no run {request.path_params['id']}")

    def api_metrics(request: Request) -> Response:
        record = store.run(request.path_params["id"])
        if record is None:
            return _not_found(f"no run {request.path_params['id']}")
        try:
            offset = _int(request.query_params.get("offset"), 0, "offset")
        except ValueError as err:
            return ApiResponse({"error": str(err)}, status_code=400)
        metrics = read_metrics(record["run_dir"], offset)
        if not metrics["exists"] and offset == 0:  # no log (an older or another kind of run): the summary's curve
            curve = (record.get("summary") or {}).get("curve") or []
            metrics["eval"] = [[p["step"], p["mean_return"], None] for p in curve if "mean_return" in p]
        return ApiResponse(metrics | {"status": record["status"]})

    def api_compare(request: Request) -> Response:
        curves, runs = {}, []
        for part in request.query_params.get("ids", "").split(","):
            if not part.strip().isdigit():
                continue
            record = store.run(int(part))
            if record is None:
                continue
            points = read_metrics(record["run_dir"])["eval"]
            curve = ([{"step": s, "mean_return": m} for s, m, _ in points]
                     or (record.get("summary") or {}).get("curve") or [])
            curves[str(record["id"])] = curve
            runs.append({k: record[k] for k in ("id", "env", "algo", "seed", "status", "eval", "run_dir")})
        return ApiResponse({"runs": runs, "overlay": overlay(curves)})

    def api_results(request: Request) -> Response:
        return ApiResponse({"results": results.listing(request.query_params.get("kind"))})

    def api_result(request: Request) -> Response:
        found = results.get(request.query_params.get("path", ""))
        return ApiResponse(found) if found else _not_found("not a result directory this dashboard knows")

    def run_file(request: Request) -> Response:
        target = store.run_file(request.path_params["id"], request.path_params["path"])
        if target is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(target)

    async def plotly(request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    routes = [
        Route("/", home), Route("/agents", agents_page), Route("/agents/{name}", agent_page),
        Route("/runs", runs_page), Route("/runs/{id:int}", run_page), Route("/compare", compare_page),
        Route("/results", results_page), Route("/result", result_page),
        Route("/api/agents", api_agents), Route("/api/agents/{name}", api_agent), Route("/api/runs", api_runs),
        Route("/api/runs/{id:int}", api_run), Route("/api/runs/{id:int}/metrics", api_metrics),
        Route("/api/compare", api_compare), Route("/api/results", api_results), Route("/api/result", api_result),
        Route("/files/{id:int}/{path:path}", run_file),
        Route("/static/plotly.min.js", plotly), Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = ["*"] if host in ("0.0.0.0", "::", "") else sorted({"127.0.0.1", "localhost", "::1", f"[{host}]", host})
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.store = store
    app.state.results = results
    return app
