"""Scraping ``/metrics`` in integration tests (``kstream run --metrics-port``)."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

#: sample name -> ``(labels, value)`` of each sample
Scrape = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int) -> Scrape:
    """Sample name -> ``(labels, value)`` of one scrape (empty while nothing serves)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    out: Scrape = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((sample.labels, sample.value))
    return out
