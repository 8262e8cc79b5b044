"""Prometheus metrics (``GET /metrics``).

:mod:`.instruments` counts what happens, in the process where it happens;
:mod:`.collector` assembles a scrape from every process's counts plus the
ledger's and the queue's state. Import them by their module names: the
instruments must stay importable without the ledger (the ComputeStacks client
uses them).
"""
