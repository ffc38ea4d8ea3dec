"""Shared fixtures: the session's broker and unique topic names.

``broker``: bootstrap servers of a session-wide local broker, started the first time a test asks
for it and stopped by PID at the end of the session. ``KSTREAM_TEST_BROKER`` picks the engine:
``kafka`` (the default: Apache Kafka 4, single-node KRaft, see ``kstream.tools.kafka_broker``) or
``tansu`` (the embedded in-memory broker). ``KSTREAM_TEST_BOOTSTRAP_SERVERS`` runs the
integration tests against a broker that is already running instead (declare its engine with
``KSTREAM_TEST_BROKER`` so engine-specific expectations hold). The broker's log goes to pytest's
temporary directory; the session header and the start line name the broker.

``broker_engine``: the engine the session's tests run on (``"kafka"`` or ``"tansu"``).
``own_broker_factory``: brokers of the session's engine owned by one test (fault tests kill,
pause and restart them).
``topic_name``: a topic name unique to the test (and to the run).
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kstream.tools import ENGINES, BrokerProcess, new_broker

ENGINE_ENVVAR = "KSTREAM_TEST_BROKER"
BOOTSTRAP_ENVVAR = "KSTREAM_TEST_BOOTSTRAP_SERVERS"


def session_engine() -> str:
    """``$KSTREAM_TEST_BROKER`` (default ``kafka``); exits the session on an unknown value."""
    engine = os.environ.get(ENGINE_ENVVAR, "kafka")
    if engine not in ENGINES:
        raise pytest.UsageError(f"{ENGINE_ENVVAR}={engine!r}: expected one of {ENGINES}")
    return engine


def pytest_report_header(config: pytest.Config) -> str:
    external = os.environ.get(BOOTSTRAP_ENVVAR)
    where = f"already running at {external}" if external else "started by the session"
    return f"kstream test broker: {session_engine()} ({where})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``kafka_only`` are skipped when the session's broker is Tansu, those marked
    ``tansu_only`` (the demo path, which starts Tansu itself) when it is Apache Kafka."""
    engine = session_engine()
    wrong = "tansu_only" if engine == "kafka" else "kafka_only"
    skip = pytest.mark.skip(reason=f"{wrong.removesuffix('_only')} only; this session: {engine}")
    for item in items:
        if wrong in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def broker_engine() -> str:
    """The engine of the session's broker: ``"kafka"`` or ``"tansu"``."""
    return session_engine()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory, broker_engine: str) -> Iterator[str]:
    """Bootstrap servers (``"127.0.0.1:PORT"``) of the session's broker."""
    external = os.environ.get(BOOTSTRAP_ENVVAR)
    if external:
        yield external
        return
    log_path = tmp_path_factory.mktemp("broker") / f"{broker_engine}.log"
    local = new_broker(broker_engine, log_path=log_path).start()
    print(
        f"\n[kstream tests] broker: {local.describe()} at {local.bootstrap} (log {log_path})",
        file=sys.stderr,
    )
    try:
        yield local.bootstrap
    finally:
        local.stop()


@pytest.fixture
def own_broker_factory(
    tmp_path: Path, broker_engine: str
) -> Iterator[Callable[..., BrokerProcess]]:
    """Starts brokers of the session's engine for one test (data under ``tmp_path``); every one
    is stopped at teardown. Call with ``persistent=True`` for a Kafka data dir that survives
    :meth:`~kstream.tools.BrokerProcess.kill` and ``restart``."""
    started: list[BrokerProcess] = []

    def start(persistent: bool = False) -> BrokerProcess:
        n = len(started)
        data_dir = tmp_path / f"broker-{n}-data" if persistent else None
        local = new_broker(
            broker_engine, log_path=tmp_path / f"broker-{n}.log", data_dir=data_dir
        ).start()
        started.append(local)
        return local

    yield start
    for local in started:
        local.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """``t-<test name>-<8 hex>``, restricted to characters Kafka allows, at most 100 long."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[:80]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"
