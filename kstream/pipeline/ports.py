"""Names of a node's output ports (``branch`` ports, a process function's side ports)."""

from __future__ import annotations

from kstream.pipeline.yamlnodes import NAME_PATTERN, Issues, Node, describe

#: Ports no branch or side output may be named after.
RESERVED_PORTS = ("main", "errors", "late")


def port_name(issues: Issues, node: Node, name: object) -> str | None:
    """A port name (``name``, read at ``node``): a plain name, not a reserved port; None (an
    issue recorded) otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or "." in name:
        hint = "port names use letters, digits, '_' and '-' (no '.')"
        issues.add(node, f"invalid port name {describe(name)}", hint)
        return None
    if name in RESERVED_PORTS:
        issues.add(node, f"'{name}' is a reserved port name", "choose another name")
        return None
    return name
