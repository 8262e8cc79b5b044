"""ComputeStacks client and simulator conformance tests (a package, so this
directory's conftest never shadows the top-level ``conftest`` module)."""
