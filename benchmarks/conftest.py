"""Benchmarks share the tests' helpers: shared-data paths and the on-demand model cache."""

import pytest

from tests.conftest import REPO, SHARED_DATA, require_models, shared, shared_data  # noqa: F401


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """After pytest-benchmark's table: the ratios that the table's medians do not show."""
    bs = getattr(config, "_benchmarksession", None)
    rows = []
    for b in getattr(bs, "benchmarks", None) or []:
        info = b.extra_info or {}
        keep = {
            k: info[k] for k in sorted(info) if k.startswith(("ratio", "two_core", "certify_cpu"))
        }
        if keep:
            rows.append(f"{b.name}: " + ", ".join(f"{k}={v}" for k, v in keep.items()))
    if rows:
        terminalreporter.write_sep("-", "ratios measured in this run (extra_info)")
        for r in rows:
            terminalreporter.write_line(r)
