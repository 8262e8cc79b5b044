"""Usage billing: ComputeStacks usage rows to Stripe Billing Meters, exactly once."""

from csonboard.usage.sync import SyncReport, UsageSync, identifier_prefix, report_lines

__all__ = ["SyncReport", "UsageSync", "identifier_prefix", "report_lines"]
