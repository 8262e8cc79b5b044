"""``csonboard sandbox computestacks|stripe``: the local stand-ins, on a port.

For trying csonboard without a real ComputeStacks or Stripe account. They keep
state in memory and listen on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import click
from werkzeug.serving import make_server


@click.group("sandbox")
def command() -> None:
    """Local stand-ins for ComputeStacks and Stripe."""


@command.command("computestacks")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=3005, show_default=True)
@click.option("--admin-username", required=True, help="The admin API credential to seed.")
@click.option("--admin-password", required=True, envvar="SANDBOX_ADMIN_PASSWORD")
def computestacks(host: str, port: int, admin_username: str, admin_password: str) -> None:
    """A ComputeStacks simulator seeded with the sandbox catalog."""
    from csonboard.sandbox.computestacks import create_app

    app = create_app(admin_username=admin_username, admin_password=admin_password)
    _serve(app, host, port, "ComputeStacks simulator")


@command.command("stripe")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=12111, show_default=True)
@click.option("--api-key", default="sk_test_sandbox", show_default=True)
@click.option(
    "--webhook-url",
    help="Where to deliver signed events, e.g. http://127.0.0.1:8000/webhooks/stripe",
)
@click.option("--webhook-secret", help="The whsec_... to sign them with.")
def stripe(
    host: str, port: int, api_key: str, webhook_url: str | None, webhook_secret: str | None
) -> None:
    """A Stripe API stand-in that the stripe library talks to unchanged."""
    from csonboard.sandbox.stripe import create_app, sandbox_account

    if (webhook_url is None) != (webhook_secret is None):
        raise click.UsageError("give --webhook-url and --webhook-secret together")
    app = create_app(api_key=api_key, webhook_url=webhook_url, webhook_secret=webhook_secret)
    try:
        _serve(app, host, port, "Stripe stand-in")
    finally:
        sandbox_account(app).stop()


def _serve(app: object, host: str, port: int, what: str) -> None:
    server = make_server(host, port, app, threaded=True)  # type: ignore[arg-type]
    click.echo(f"{what} on http://{host}:{server.port} (Ctrl-C stops it)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
