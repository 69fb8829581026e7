"""The web UI served by the control plane: overview, services, logs, traces and jobs, live.

The control plane mounts it under ``/dashboard/`` of its own HTTP address (``minga status --json``
prints the URL as ``"dashboard"``)::

    from minga.dashboard import DashboardSource, dashboard_app

    class Mine(DashboardSource):
        def status(self) -> dict: ...            # the ``minga status --json`` document

    app.add_subapp("/dashboard", dashboard_app(Mine()))

Every asset (HTML, CSS, JavaScript, the charts drawn as inline SVG) is package data served by
minga itself: the page works with no network connection and needs no build step. Open pages
follow changes over Server-Sent Events.
"""

from minga.dashboard._app import ASSETS, dashboard_app, log_query
from minga.dashboard._source import DashboardSource, LogQuery

__all__ = ["ASSETS", "DashboardSource", "LogQuery", "dashboard_app", "log_query"]
