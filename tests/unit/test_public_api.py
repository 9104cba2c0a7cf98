"""The public API is what `liveness.__all__` lists, and every listed name exists."""

import liveness


def test_all_names_exist() -> None:
    missing = [n for n in liveness.__all__ if not hasattr(liveness, n)]
    assert missing == []


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in liveness.__all__ if n != "__version__"]
    assert names == sorted(set(names))
