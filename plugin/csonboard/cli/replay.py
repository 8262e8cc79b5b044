"""``csonboard replay``: process events again, or resume a purchase's onboarding.

Exit status: 0 when everything asked for was queued (or, with --dry-run, would
be); 1 when something could not be replayed (each item says why); 2 for bad
arguments or settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json, short_time
from csonboard.errors import (
    ComputeStacksNotFound,
    CsonboardError,
    StripeRefused,
    WebhookRejected,
)
from csonboard.ledger import Ledger
from csonboard.onboarding import STEP_NAMES
from csonboard.operations.preview import SessionPreview, preview_session
from csonboard.operations.replay import (
    OrderState,
    ReplayReport,
    replay_events,
    replay_file,
    replay_session,
)
from csonboard.queue import Doorbell, open_doorbell
from csonboard.runtime import catalog_of, computestacks_admin
from csonboard.settings import Settings
from csonboard.stripe_api import StripeGateway

_MARKS = {"kept": "✓", "rerun": "↻", "run": "→"}
_STATES = {"kept": "done, kept", "rerun": "done, would re-run", "run": "would run"}


@click.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option(
    "--from-stripe",
    is_flag=True,
    help="Fetch events the ledger does not have from the Stripe API (it keeps 30 days).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Events exported from the Stripe Dashboard or CLI (JSON); stored unsigned, "
    "as supplied by an operator.",
)
@click.option("--session", "session_id", help="Resume this Checkout Session's onboarding.")
@click.option(
    "--from-step",
    type=click.Choice(STEP_NAMES),
    help="With --session: re-run from this step (its result and later ones are redone).",
)
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def command(
    ctx: Context,
    event_ids: tuple[str, ...],
    from_stripe: bool,
    path: Path | None,
    session_id: str | None,
    from_step: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Process EVENT_IDs again, or resume a Checkout Session's onboarding.

    \b
      csonboard replay evt_1 evt_2               events in the ledger
      csonboard replay evt_1 --from-stripe       ... or else from the Stripe API
      csonboard replay --file event.json         an exported event
      csonboard replay --session cs_... [--from-step place_order] [--dry-run]

    The work is queued; a running worker does it (`csonboard worker --burst`
    does it now and exits).
    """
    if sum((bool(event_ids), path is not None, session_id is not None)) != 1:
        raise click.UsageError("give EVENT_ID..., --file PATH or --session cs_..., one of them")
    if from_step and session_id is None:
        raise click.UsageError("--from-step goes with --session")
    if from_stripe and not event_ids:
        raise click.UsageError("--from-stripe goes with EVENT_ID...")
    if session_id is not None and not session_id.startswith("cs_"):
        raise click.BadParameter("a Checkout Session id starts with cs_", param_hint="--session")
    settings = ctx.settings
    ledger = settings.open_ledger(must_exist=True)
    doorbell: Doorbell | None = None
    try:
        doorbell = None if dry_run else open_doorbell(settings)
        if session_id is not None and dry_run:
            _preview(settings, ledger, session_id, from_step, as_json)
            return
        report = _replay(
            settings, ledger, doorbell, event_ids, from_stripe, path, session_id, from_step, dry_run
        )
    finally:
        ledger.close()
        if doorbell is not None:
            doorbell.close()
    _show(report, dry_run, as_json)


def _replay(
    settings: Settings,
    ledger: Ledger,
    doorbell: Doorbell | None,
    event_ids: tuple[str, ...],
    from_stripe: bool,
    path: Path | None,
    session_id: str | None,
    from_step: str | None,
    dry_run: bool,
) -> ReplayReport:
    if session_id is not None:
        assert doorbell is not None
        stripe = StripeGateway.from_settings(settings) if settings.stripe.api_key else None
        return replay_session(
            ledger,
            doorbell,
            session_id,
            from_step=from_step,
            livemode=lambda: settings.livemode,
            check_session=stripe.checkout_session if stripe else None,
            order_state=_order_state(settings),
        )
    if path is not None:
        try:
            return replay_file(ledger, doorbell, path, livemode=settings.livemode, dry_run=dry_run)
        except WebhookRejected as exc:
            raise click.BadParameter(str(exc), param_hint="--file") from None
    fetch = None
    livemode = False  # only fetched events are parsed, and only then is the mode needed
    if from_stripe:
        fetch = StripeGateway.from_settings(settings).event_body_if_kept
        livemode = settings.livemode
    return replay_events(
        ledger, doorbell, event_ids, fetch=fetch, livemode=livemode, dry_run=dry_run
    )


def _order_state(settings: Settings) -> OrderState | None:
    """How a replay asks ComputeStacks about an order; None when it cannot."""
    if not settings.cs.url or settings.cs.admin_username is None:
        return None
    admin = computestacks_admin(settings)

    def state(order_id: str) -> tuple[str, int | None] | None:
        try:
            order = admin.get_admin_order(order_id)
        except ComputeStacksNotFound:
            return None
        return str(order.status), order.project_id

    return state


def _show(report: ReplayReport, dry_run: bool, as_json: bool) -> None:
    if as_json:
        echo_json({"dry_run": dry_run, "items": report.items, "warning": report.warning})
    else:
        for item in report.items:
            click.echo(f"{'✓' if item.ok else '✗'} {item.ident}  {item.message}")
        if dry_run:
            click.echo("dry run: nothing was changed")
        elif any(item.ok for item in report.items):
            click.echo("a running worker does the work (`csonboard worker --burst` does it now)")
    if report.warning:
        click.echo(f"csonboard: warning: {report.warning}", err=True)
    if report.failed:
        raise CsonboardError(
            f"{len(report.failed)} of {len(report.items)} could not be replayed (see above)"
        )


def _preview(
    settings: Settings, ledger: Ledger, session_id: str, from_step: str | None, as_json: bool
) -> None:
    catalog = catalog_of(settings) if settings.plans is not None else None
    preview = preview_session(ledger, session_id, from_step=from_step, catalog=catalog)
    if as_json:
        echo_json({"dry_run": True, **vars(preview)})
        return
    _show_preview(preview)
    if preview.onboarding is None and settings.stripe.api_key is not None:
        seen, view = _stripe_view(settings, session_id)
        click.echo(f"\nStripe: {view}")
        if not seen:
            raise CsonboardError(f"{session_id} is neither in the ledger nor in Stripe")
    click.echo("dry run: nothing was changed")


def _stripe_view(settings: Settings, session_id: str) -> tuple[bool, str]:
    """Whether Stripe has a session that has no onboarding yet, and what it
    says of it (a read)."""
    try:
        session = StripeGateway.from_settings(settings).checkout_session(session_id)
    except StripeRefused as exc:
        return False, f"{exc}: a replay would fail"
    units = sum(item.quantity for item in session.line_items)
    return True, (
        f"the session is {session.status}, payment {session.payment_status}, "
        f"{units} unit(s) bought, customer {session.customer or '- (guest)'}"
    )


def _show_preview(preview: SessionPreview) -> None:
    onboarding = preview.onboarding
    click.echo(f"onboarding {preview.session_id}")
    if onboarding is not None:
        click.echo(f"  status:   {onboarding.status} (step {onboarding.step or '-'})")
        if onboarding.last_error or onboarding.note:
            click.echo(f"  reason:   {onboarding.last_error or onboarding.note}")
        click.echo(
            f"  customer: {onboarding.customer_id or '-'}  "
            f"ComputeStacks user: {onboarding.cs_user_id or '-'}"
        )
    click.echo(f"  replay:   {preview.verdict}")
    click.echo("\nsteps:")
    for step in preview.steps:
        record = step.record
        tries = f"tries {record.attempts}" if record else "not started"
        when = short_time(record.finished_at or record.started_at) if record else ""
        line = f"  {_MARKS[step.state]} {step.step:<23} {_STATES[step.state]:<19} {tries}  {when}"
        click.echo(line.rstrip())
        if record and record.last_error:
            click.echo(f"      last error: {record.last_error}")
        if record and record.result:
            click.echo(f"      result: {json.dumps(record.result, sort_keys=True)}")
        for call in step.calls:
            click.echo(f"      would call: {call}")
    if any("{" in call for step in preview.steps for call in step.calls):
        click.echo("  (ids in braces are not known yet)")
    if preview.orders:
        click.echo("\norders:")
        for order in preview.orders:
            fate = "  -> abandoned; a new order is placed" if order in preview.abandoned else ""
            click.echo(
                f"  unit {order.unit}: {order.order_id} {order.status} "
                f"project {order.project_id or '-'}{fate}"
            )
