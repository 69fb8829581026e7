"""The service tests run on the shipped fixtures (minga.service.testing): the embedded broker by
default; test_container.py and test_lifecycle.py also run on a real nats-server."""

from __future__ import annotations

import sys
from pathlib import Path

# demo_services.py holds the services under test; replica processes import it too
sys.path.insert(0, str(Path(__file__).parent))
