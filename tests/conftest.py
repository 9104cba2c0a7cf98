"""Shared test fixtures: where the shared data lives, and a model cache built on demand."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# Models are read from the same cache as the CLI uses ($LIVENESS_MODEL_DIR, else the user's
# cache dir), so `scripts/setup.sh` builds them once for the demo and the tests alike; a test
# that needs a model group missing there builds it (see require_models).


def shared(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with a clear reason when it is missing."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not found at {p} (expected ../shared/data beside the repo)")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared()


_built: set[str] = set()


def require_models(*groups: str) -> None:
    """Build the named model groups into the cache if they are not there yet (once per run)."""
    from liveness.models.build import BuildOptions, build_models

    todo = [g for g in groups if g not in _built]
    if not todo:
        return
    weights = SHARED_DATA / "antispoof"
    report = build_models(
        opts=BuildOptions(antispoof_weights=weights if weights.exists() else None), only=todo
    )
    if report.failed:
        msgs = "; ".join(f"{g}: {m}" for g, m in report.failed)
        pytest.fail(f"model build failed: {msgs}")
    _built.update(todo)


class LocalServers:
    """Static HTTP servers on 127.0.0.1 (port 0) for download tests; never another address.

    ``serve(folder)`` starts one and returns its base URL; ``requests`` lists every path asked.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._servers: list[http.server.ThreadingHTTPServer] = []

    def __call__(self, folder: Path) -> str:
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.append(self.path)

        handler = functools.partial(Handler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self._servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    def close(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()


@pytest.fixture()
def serve() -> Iterator[LocalServers]:
    servers = LocalServers()
    yield servers
    servers.close()
