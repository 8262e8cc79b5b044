"""``python -m csonboard`` is the ``csonboard`` command."""

from csonboard.cli import main

main()
