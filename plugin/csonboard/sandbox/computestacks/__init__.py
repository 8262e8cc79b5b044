"""A ComputeStacks controller simulator, faithful to the controller's source.

``create_app(...)`` returns a Flask app serving the admin and user APIs the
csonboard client uses (users, orders, projects, services with their power and
containers, billing usage rows), as release 9.3.1 of the controller serves
them, with the real controller's status codes, bodies, headers and quirks, seeded
from the sandbox catalog, plus test controls under ``/_sandbox/``. State lives
in memory; see :mod:`.state` for how time passes.
"""

from csonboard.sandbox.computestacks.app import create_app

__all__ = ["create_app"]
