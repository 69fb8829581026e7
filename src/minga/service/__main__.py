"""``python -m minga.service MODULE:Class`` runs one replica of a service."""

import sys

from minga.service._runner import main

sys.exit(main())
