"""Shared fixtures.

``broker``: a session-wide local Tansu broker (``kstream.broker.LocalBroker`` on a free port),
started the first time a test asks for it and stopped by PID at the end of the session. Its log
goes to pytest's temporary directory. Set ``KSTREAM_TEST_BOOTSTRAP_SERVERS`` to run the
integration tests against another broker instead.

``topic_name``: a topic name unique to the test (and to the run).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

from kstream.broker import LocalBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers (``"127.0.0.1:PORT"``) of the session's broker."""
    external = os.environ.get("KSTREAM_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    local = LocalBroker(log_path=log_path).start()
    try:
        yield local.bootstrap
    finally:
        local.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """``t-<test name>-<8 hex>``, restricted to characters Kafka allows, at most 100 long."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[:80]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"
