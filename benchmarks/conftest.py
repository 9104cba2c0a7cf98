"""Benchmarks share the tests' helpers: shared-data paths and the on-demand model cache."""

from tests.conftest import REPO, SHARED_DATA, require_models, shared, shared_data  # noqa: F401
