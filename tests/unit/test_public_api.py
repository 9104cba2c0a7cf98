"""The public API is what `liveness.__all__` lists, and every listed name exists."""

import liveness


def test_all_names_exist() -> None:
    missing = [n for n in liveness.__all__ if not hasattr(liveness, n)]
    assert missing == []


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in liveness.__all__ if n != "__version__"]
    assert names == sorted(set(names))


def test_import_is_light() -> None:
    """`import liveness` must not pull in the model runtimes (backends that only verify records)."""
    import subprocess
    import sys

    code = (
        "import sys, liveness; "
        "heavy = [m for m in ('onnxruntime', 'ctranslate2', 'av', 'cv2') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
