"""The job graph as text: plain text, Mermaid (``flowchart LR``) and Graphviz DOT (``kstream plan
--output text|mermaid|dot``; ``svg`` is DOT laid out by Graphviz's ``dot`` program, run by the
CLI).

Pure functions: a :class:`~kstream.graph.plan.Plan` (or its
:class:`~kstream.graph.picture.Picture`) in, text out; no files, processes or terminal. Every
format shows the same picture (:mod:`kstream.graph.picture`): a cluster per stage, a cylinder
per topic (sources, tables, sinks, late and dead-letter topics), a box per operator and a
hexagon per ``key_by``; edges labelled with the join side, the port unless ``main`` and, out of
a ``key_by``, the repartition topic (a thick edge); a broadcast table outside the stages with a
dashed edge to its lookup join. Names are escaped for each format: node ids become the
picture's safe keys, labels are quoted (Mermaid entity codes ``#quot;``, ``#lt;`` ...; DOT
backslash escapes).
"""

from __future__ import annotations

from collections.abc import Callable

from kstream.graph.picture import Edge, Node, Picture, job_picture
from kstream.graph.plan import Plan

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid", "to_text"]


def to_text(picture: Picture) -> str:
    """The picture as plain text, a stage per paragraph, one line per node: ``name: detail <-
    its inputs``, an input written as in ``from:`` (``routed.on-time``), with ``left:`` /
    ``right:`` into a join, ``via TOPIC`` through a repartition topic and ``(broadcast)`` for a
    broadcast table; then the nodes outside every stage. Ends with a newline."""
    lines = [f"pipeline {picture.pipeline}: {len(picture.clusters)} stage(s)"]
    for cluster in picture.clusters:
        lines += ["", cluster.title]
        lines += [f"  {_text_node(picture, picture.node(k))}" for k in cluster.nodes]
    if picture.outside:
        lines += ["", "outside the stages"]
        lines += [f"  {_text_node(picture, n)}" for n in picture.outside]
    return "\n".join(lines) + "\n"


def _text_node(picture: Picture, node: Node) -> str:
    inputs = ", ".join(_text_input(picture, e) for e in picture.incoming(node.key))
    return f"{node.name}: {node.detail}" + (f" <- {inputs}" if inputs else "")


def _text_input(picture: Picture, edge: Edge) -> str:
    text = picture.node(edge.tail).name + (f".{edge.port}" if edge.port != "main" else "")
    if edge.side:
        text = f"{edge.side}: {text}"
    if edge.topic:
        text += f" via {edge.topic}"
    return text + (" (broadcast)" if edge.kind == "broadcast" else "")


# -- Mermaid ---------------------------------------------------------------------------------

#: Mermaid node shapes by role: ``(opening, closing)`` around the quoted label.
_MERMAID_SHAPES = {
    "operator": ('("', '")'),
    "key_by": ('{{"', '"}}'),
}
_MERMAID_TOPIC = ('[("', '")]')
_MERMAID_ARROWS = {"record": "-->", "repartition": "==>", "broadcast": "-.->"}
#: Characters a quoted Mermaid label cannot hold as they are, as Mermaid entity codes.
_MERMAID_ESCAPES = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}
)


def to_mermaid(picture: Picture) -> str:
    """The picture as a Mermaid ``flowchart LR`` (GitHub renders it in a ```` ```mermaid ````
    block): a ``subgraph`` per stage, thick edges (``==>``) for repartition topics, dashed ones
    (``-.->``) from broadcast tables, which get the class ``broadcast`` (a dashed border). Ends
    with a newline."""
    lines = ["flowchart LR"]
    for cluster in picture.clusters:
        lines.append(f'    subgraph {cluster.key} ["{_mermaid_text(cluster.title)}"]')
        lines += [f"        {_mermaid_node(picture.node(k))}" for k in cluster.nodes]
        lines.append("    end")
    lines += [f"    {_mermaid_node(n)}" for n in picture.outside]
    lines += [f"    {_mermaid_edge(e)}" for e in picture.edges]
    broadcast = [n.key for n in picture.nodes if n.role == "broadcast"]
    if broadcast:
        lines.append("    classDef broadcast stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(broadcast)} broadcast")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.translate(_MERMAID_ESCAPES)


def _mermaid_label(lines: tuple[str, ...]) -> str:
    return "<br/>".join(_mermaid_text(line) for line in lines)


def _mermaid_node(node: Node) -> str:
    opening, closing = _MERMAID_SHAPES.get(node.role, _MERMAID_TOPIC)
    return f"{node.key}{opening}{_mermaid_label((node.name, node.detail))}{closing}"


def _mermaid_edge(edge: Edge) -> str:
    arrow = _MERMAID_ARROWS[edge.kind]
    label = f'|"{_mermaid_label(edge.label)}"|' if edge.label else ""
    return f"{edge.tail} {arrow}{label} {edge.head}"


# -- Graphviz DOT ----------------------------------------------------------------------------

#: DOT node attributes by role (topics: cylinders).
_DOT_SHAPES = {
    "operator": "shape=box, style=rounded",
    "key_by": "shape=hexagon",
    "broadcast": "shape=cylinder, style=dashed",
}
_DOT_TOPIC = "shape=cylinder"
_DOT_EDGES = {"record": "", "repartition": "style=bold", "broadcast": "style=dashed"}


def to_dot(picture: Picture) -> str:
    """The picture as a Graphviz ``digraph`` (left to right): a ``cluster_stage_N`` subgraph
    per stage, bold edges for repartition topics, dashed ones from broadcast tables (dashed
    cylinders). Every id and label is a quoted DOT string. Ends with a newline."""
    lines = [
        f"digraph {_dot_quote(picture.pipeline)} {{",
        "  rankdir=LR;",
        f"  label={_dot_quote('pipeline ' + picture.pipeline)}; labelloc=t;",
        '  graph [fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for cluster in picture.clusters:
        lines.append(f"  subgraph {_dot_quote('cluster_' + cluster.key)} {{")
        lines.append(f"    label={_dot_quote(cluster.title)}; style=rounded; color=gray50;")
        lines += [f"    {_dot_node(picture.node(k))}" for k in cluster.nodes]
        lines.append("  }")
    lines += [f"  {_dot_node(n)}" for n in picture.outside]
    lines += [f"  {_dot_edge(e)}" for e in picture.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string; a newline becomes a centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_node(node: Node) -> str:
    attrs = _DOT_SHAPES.get(node.role, _DOT_TOPIC)
    label = _dot_quote(f"{node.name}\n{node.detail}")
    return f"{_dot_quote(node.key)} [label={label}, {attrs}];"


def _dot_edge(edge: Edge) -> str:
    attrs = [f"label={_dot_quote(chr(10).join(edge.label))}"] if edge.label else []
    attrs += [_DOT_EDGES[edge.kind]] if _DOT_EDGES[edge.kind] else []
    tail_head = f"{_dot_quote(edge.tail)} -> {_dot_quote(edge.head)}"
    return f"{tail_head} [{', '.join(attrs)}];" if attrs else f"{tail_head};"


#: The formats :func:`render` writes, and the function writing each.
FORMATS: dict[str, Callable[[Picture], str]] = {
    "text": to_text,
    "mermaid": to_mermaid,
    "dot": to_dot,
}


def render(plan: Plan, fmt: str) -> str:
    """``plan``'s job graph in format ``fmt`` (a key of :data:`FORMATS`: ``text``, ``mermaid``
    or ``dot``), ending with a newline.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt](job_picture(plan))
