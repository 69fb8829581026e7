"""``minga server``: one asyncio process composing the broker, the registry, the supervisor and an HTTP API.

The CLI finds a running server through the state file under MINGA_HOME
(:func:`read_state`) and talks to it with :class:`ControlPlaneClient`. ``minga run`` keeps each job's
record in :func:`jobs_dir`, where the dashboard's jobs page finds it.
"""

from minga.controlplane._client import ControlPlaneClient
from minga.controlplane._dashboard import jobs_dir
from minga.controlplane._server import ControlPlane
from minga.controlplane._state import ServerState, pid_alive, read_state

__all__ = ["ControlPlane", "ControlPlaneClient", "ServerState", "jobs_dir", "pid_alive", "read_state"]
