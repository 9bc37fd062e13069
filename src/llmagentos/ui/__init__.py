"""``llmagentos ui``: a local web dashboard over the store and run directories (read-only).

:func:`llmagentos.ui.app.create_app` builds the application, :func:`llmagentos.ui.server.serve` runs it,
:mod:`llmagentos.ui.data` is its read-only query layer. Needs the ``ui`` extra (Starlette, uvicorn, plotly).
"""
