"""``csonboard retry``: re-queue failed, dead-lettered or stuck work in bulk.

Exit status: 0 when the matching work was re-queued (or nothing matched, or,
with --dry-run, listed); 1 when the operator did not confirm; 2 for bad
arguments or settings.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.operations.retry import (
    ACCOUNT,
    ONBOARDING,
    Selector,
    WorkItem,
    find_retryable,
    retry_work,
)
from csonboard.queue import open_doorbell

CONFIRM_ABOVE = 10
"""Re-queueing more items than this asks first (unless --yes)."""
_SHOWN = 20


@click.command("retry")
@click.option("--failed", is_flag=True, help="Work that failed and waits for its next try.")
@click.option("--dead", is_flag=True, help="Dead-lettered work (fix the cause first).")
@click.option("--stuck", is_flag=True, help="Onboardings whose order never finished.")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="An event type, `onboarding` or `account`; repeat for several. Default: all work.",
)
@click.option("--since", type=WHEN, help="Received/created at or after: 2h, 7d or an ISO time.")
@click.option("--until", type=WHEN, help="Received/created before: 30m or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), help="At most this many, newest first.")
@click.option("--dry-run", is_flag=True, help="List what would be re-queued; change nothing.")
@click.option("--yes", "-y", is_flag=True, help=f"Do not ask, even for more than {CONFIRM_ABOVE}.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON for scripts (what matched and what was done)."
)
@pass_context
def command(
    ctx: Context,
    failed: bool,
    dead: bool,
    stuck: bool,
    types: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Re-queue matching events and onboardings, each only if it is still as listed.

    \b
      csonboard retry --dead --since 2h --dry-run      see what would be re-queued
      csonboard retry --dead --since 2h                then do it
      csonboard retry --failed --stuck --type onboarding --yes

    The filters are those of `events list` and `onboardings list` (events by
    the time received, onboardings by the time created). Onboardings resume at
    their first unfinished step; events start their tries again.
    """
    flags: tuple[tuple[Selector, bool], ...] = (
        ("failed", failed),
        ("dead", dead),
        ("stuck", stuck),
    )
    selectors = [name for name, chosen in flags if chosen]
    if not selectors:
        raise click.UsageError("say which work: --failed, --dead and/or --stuck")
    if since and until and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    settings = ctx.settings
    ledger = settings.open_ledger(must_exist=True)
    try:
        items = find_retryable(
            ledger, selectors, types=types, since=since, until=until, limit=limit
        )
        if as_json and (dry_run or not items):
            echo_json({"dry_run": dry_run, "matched": items, "requeued": [], "skipped": []})
            return
        if not items:
            click.echo("nothing matches; nothing to re-queue")
            return
        if not as_json:
            click.echo(f"{_count(items)} match:")
            _table(items, items if dry_run else items[:_SHOWN])
        if dry_run:
            click.echo("dry run: nothing was changed")
            return
        if len(items) > CONFIRM_ABOVE and not yes:
            question = f"Re-queue these {_count(items)}?"
            if not click.confirm(question, default=False, err=True):
                raise CsonboardError(
                    "not confirmed: nothing was re-queued (--yes skips the question)"
                )
        doorbell = open_doorbell(settings)
        try:
            with click.progressbar(length=len(items), label="re-queueing", file=sys.stderr) as bar:
                result = retry_work(ledger, doorbell, items, progress=bar.update)
        finally:
            doorbell.close()
    finally:
        ledger.close()
    if as_json:
        echo_json(
            {
                "dry_run": False,
                "matched": items,
                "requeued": result.requeued,
                "skipped": result.skipped,
            }
        )
        if result.warning:
            click.echo(f"csonboard: warning: {result.warning}", err=True)
        return
    click.echo(f"re-queued {_count(result.requeued) if result.requeued else 'nothing'}")
    if result.skipped:
        idents = ", ".join(item.ident for item in result.skipped[:_SHOWN])
        click.echo(
            f"left alone {_count(result.skipped)} that changed since they were listed "
            f"(finished, running, or retried by someone else): {idents}"
        )
    if result.requeued:
        click.echo("a running worker picks them up (`csonboard worker --burst` does it now)")
    if result.warning:
        click.echo(f"csonboard: warning: {result.warning}", err=True)


def _count(items: Sequence[WorkItem]) -> str:
    kinds = Counter(item.kind for item in items)
    parts = [f"{kinds['event']} event(s)"] if kinds["event"] else []
    if kinds[ONBOARDING]:
        parts.append(f"{kinds[ONBOARDING]} onboarding(s)")
    if kinds[ACCOUNT]:
        parts.append(f"{kinds[ACCOUNT]} customer lifecycle(s)")
    return " and ".join(parts)


def _table(items: Sequence[WorkItem], shown: Sequence[WorkItem]) -> None:
    echo_table(
        ["WHEN", "KIND", "ID", "STATUS", "TYPE/STEP", "LAST ERROR"],
        (
            (short_time(i.when), i.kind, i.ident, i.status, i.what, _oneline(i.last_error))
            for i in shown
        ),
    )
    if len(shown) < len(items):
        click.echo(f"... and {len(items) - len(shown)} more (--dry-run lists them all)")


def _oneline(text: str | None, width: int = 100) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
