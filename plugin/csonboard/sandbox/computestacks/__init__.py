"""A ComputeStacks controller simulator, faithful to the controller's source.

``create_app(...)`` returns a Flask app serving the admin and user APIs the
csonboard client uses (users, orders, projects, services, billing usage rows),
with the real controller's status codes, bodies, headers and quirks, seeded
from the sandbox catalog, plus test controls under ``/_sandbox/``. State lives
in memory; see :mod:`.state` for how time passes.
"""

from csonboard.sandbox.computestacks.app import create_app

__all__ = ["create_app"]
