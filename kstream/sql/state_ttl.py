"""``SET 'table.exec.state.ttl' = '<duration>'``: Flink SQL's idle state retention on the
compiled pipeline (docs/sql.md, "SET").

Flink gives a processing-time TTL (``StateConfigUtil.createTtlConfig``: written entries live
``ttl`` ms, reads do not extend them, expired ones are never returned) to the state of its
non-windowed operators. kstream sets ``state_ttl`` on the nodes they compile to:

- the ``global`` windows of GROUP BY and of deduplication (Flink's ``GroupAggFunction``,
  ``RowTimeDeduplicateFunction``);
- ``top_n`` (Flink's rank functions);
- the interval join a regular join compiles to (bounds ``±REGULAR_JOIN_BOUND_MS``; Flink's
  ``StreamingJoinOperator`` record state).

Window aggregations (TUMBLE, HOP, CUMULATE, SESSION), window joins and interval joins with time
bounds keep their state until the watermark cleans it, as in Flink, which does not apply the
TTL to them. ``0`` (Flink's default) sets nothing: state is kept until it is not needed.
"""

from __future__ import annotations

from typing import Any

from kstream.sql.joins import REGULAR_JOIN_BOUND_MS

__all__ = ["SETTING", "apply_state_ttl"]

#: The option's key.
SETTING = "table.exec.state.ttl"
_REGULAR = [-REGULAR_JOIN_BOUND_MS, REGULAR_JOIN_BOUND_MS]


def apply_state_ttl(operators: list[dict[str, Any]], ttl_ms: int) -> None:
    """Give each operator item of ``operators`` (a pipeline mapping's, changed in place) that
    Flink's TTL covers ``state_ttl: ttl_ms`` (ms; 0: none)."""
    if ttl_ms <= 0:
        return
    for item in operators:
        window, join = item.get("window"), item.get("join")
        if isinstance(window, dict) and window.get("type") == "global":
            window["state_ttl"] = ttl_ms
        elif isinstance(item.get("top_n"), dict):
            item["top_n"]["state_ttl"] = ttl_ms
        elif isinstance(join, dict) and join.get("between") == _REGULAR:
            join["state_ttl"] = ttl_ms
