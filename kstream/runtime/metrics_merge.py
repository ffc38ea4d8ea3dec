"""One ``/metrics`` for the children of ``kstream run --processes N --metrics-port PORT``.

Child ``n`` serves its own metrics on ``PORT + n``; the supervisor serves ``PORT``, where each
scrape fetches every child's page (1 s timeout each) and re-exposes its samples with one more
label, ``process="<n>"``. Sums across the group are then one PromQL ``sum`` (or a plain sum of
the page's lines), and each child stays scrapable on its own port. A child that does not answer
(restarting) is left out of that scrape and counted in ``kstream_supervisor_scrape_errors``.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from kstream.errors import UsageError

log = logging.getLogger("kstream.runtime.metrics_merge")

#: seconds one child's page may take
SCRAPE_TIMEOUT_S = 1.0


def child_port(port: int, number: int) -> int:
    """The metrics port of child ``number`` (1..N) when the supervisor serves ``port``.

    Raises:
        UsageError: the port would be past 65535.
    """
    if port + number > 65535:
        raise UsageError(f"--metrics-port {port}: child {number} would need port {port + number}")
    return port + number


class MergedMetrics(Collector):
    """Re-exposes the children's metrics with a ``process`` label (see the module).

    Args:
        children: ``(number, port)`` of each child's metrics server on localhost.
    """

    def __init__(self, children: Sequence[tuple[int, int]]) -> None:
        self.children = list(children)
        self.errors = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def start(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve the merged ``/metrics`` on ``port`` from a daemon thread.

        Raises:
            UsageError: the port cannot be bound.
        """
        try:
            start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise UsageError(f"--metrics-port {port}: cannot serve metrics there ({exc})") from exc
        log.info(
            "merged metrics of %d processes on http://%s:%d/metrics", len(self.children), host, port
        )

    def collect(self) -> Iterator[Metric]:
        """Every child's families, samples labelled ``process`` (prometheus-client's API)."""
        merged: dict[str, Metric] = {}
        for number, port in self.children:
            text = self._fetch(port)
            if text is None:
                continue
            for family in text_string_to_metric_families(text):
                target = merged.get(family.name)
                if target is None:
                    target = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = target
                for s in family.samples:
                    labels = {**s.labels, "process": str(number)}
                    target.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)
        yield from merged.values()
        errors = GaugeMetricFamily(
            "kstream_supervisor_scrape_errors",
            "Child metrics pages that could not be fetched since the supervisor started.",
        )
        errors.add_metric([], self.errors)
        yield errors

    def _fetch(self, port: int) -> str | None:
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                body: bytes = response.read()
                return body.decode()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.errors += 1
            log.debug("metrics of %s: %s", url, exc)
            return None
