"""Model files: the cache and its manifest, converters, and verified ONNX sessions."""

from liveness.models.registry import ModelEntry, cache_dir, entry, load_session, sha256_file

__all__ = ["ModelEntry", "cache_dir", "entry", "load_session", "sha256_file"]
