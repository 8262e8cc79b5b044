"""Subscription lifecycle: suspend on non-payment, lift on payment, terminate
on cancellation, resize on a plan change -- decided from each subscription's
current state in Stripe (``policy``), applied per customer (``runner``)."""

from csonboard.lifecycle.runner import LifecycleRunner

__all__ = ["LifecycleRunner"]
