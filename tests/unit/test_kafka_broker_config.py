"""kstream.tools.kafka_broker without a JVM: cluster ids and the generated server settings."""

from __future__ import annotations

import base64
from pathlib import Path

from kstream.tools.kafka_broker import KafkaBroker, new_cluster_id


def test_cluster_ids_are_kafka_uuids_never_starting_with_a_dash() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-"), cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_server_properties_fit_one_node_and_keep_the_controller_port(tmp_path: Path) -> None:
    broker = KafkaBroker(data_dir=tmp_path)
    config = broker._write_config(tmp_path, 19092)
    values = dict(line.split("=", 1) for line in config.read_text().splitlines())
    assert values["listeners"].startswith("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:")
    assert values["transaction.state.log.replication.factor"] == "1"
    assert values["transaction.state.log.min.isr"] == "1"
    assert values["offsets.topic.replication.factor"] == "1"
    assert values["log.dirs"] == str(tmp_path / "kafka-logs")
    again = dict(
        line.split("=", 1)
        for line in broker._write_config(tmp_path, 19093).read_text().splitlines()
    )
    assert again["controller.quorum.voters"] == values["controller.quorum.voters"]
