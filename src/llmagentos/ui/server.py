"""Run the dashboard: check the address first (one clear sentence when it cannot be used), then serve it."""

from __future__ import annotations

import socket
from pathlib import Path

from llmagentos.core.errors import UsageError


def check_address(host: str, port: int) -> None:
    """Refuse a port outside 1–65535 or an address this machine cannot listen on, before anything starts."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UsageError(f"--host {host!r} is not an address of this machine (the default is 127.0.0.1)") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port}: {err.strerror}; choose another --port") from None


def serve(host: str = "127.0.0.1", port: int = 8765, store_root: str | Path | None = None,
          roots: list[str | Path] | None = None) -> None:
    """Serve the dashboard until interrupted (Ctrl-C)."""
    try:
        import uvicorn

        from llmagentos.ui.app import create_app
    except ImportError as err:
        raise UsageError(f"llmagentos ui needs the 'ui' extra ({err.name} is missing): "
                         "pip install 'llmagentos[ui]'") from None
    check_address(host, port)
    app = create_app(store_root, roots, host)
    print(f"LLMAgentOS dashboard on http://{host}:{port}/  (store {app.state.store.root}; Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
