"""Development tooling kept out of the engine's import path: local brokers for demos and tests.

Nothing in the engine imports this package. ``kstream broker``, ``make demo``, the test
fixtures, the chaos suite and the benchmarks use it.

- :mod:`kstream.tools.process`: the life cycle shared by every local broker child process.
- :mod:`kstream.tools.tansu`: Tansu, the embedded in-memory broker (no Java needed; the default).
- :mod:`kstream.tools.kafka_broker`: Apache Kafka 4.x, single-node KRaft, from Maven Central jars
  (:mod:`kstream.tools.kafka_jars`); the broker the integration and chaos suites prove
  correctness against (DESIGN.md section 9).
"""

from __future__ import annotations

from pathlib import Path

from kstream.tools.process import BrokerProcess, free_port

#: The broker engines ``kstream broker --engine`` and ``KSTREAM_TEST_BROKER`` accept.
ENGINES = ("tansu", "kafka")


def new_broker(
    engine: str, log_path: str | Path | None = None, data_dir: str | Path | None = None
) -> BrokerProcess:
    """A not yet started local broker of ``engine`` (``"tansu"`` or ``"kafka"``).

    Args:
        engine: one of :data:`ENGINES`.
        log_path: file that receives the broker's own output (appended); ``None`` keeps it in
            a temporary file.
        data_dir: Kafka only: folder of its log segments and metadata, kept across restarts;
            ``None`` uses a temporary folder removed when the broker stops.

    Raises:
        BrokerError: an unknown engine, or a ``data_dir`` for Tansu (it keeps data in memory).
    """
    from kstream.errors import BrokerError

    if engine == "kafka":
        from kstream.tools.kafka_broker import KafkaBroker

        return KafkaBroker(log_path=log_path, data_dir=data_dir)
    if engine == "tansu":
        if data_dir is not None:
            raise BrokerError("the tansu engine keeps its data in memory; --data-dir needs kafka")
        from kstream.tools.tansu import TansuBroker

        return TansuBroker(log_path=log_path)
    raise BrokerError(f"unknown broker engine {engine!r}; expected one of: {', '.join(ENGINES)}")


__all__ = ["ENGINES", "BrokerProcess", "free_port", "new_broker"]
