"""``python -m minga`` runs the ``minga`` command."""

from minga.cli import main

main()
