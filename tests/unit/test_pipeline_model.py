"""The pipeline file models (kstream.pipeline.model): the JSON Schema of ``kstream schema``, the
files they accept and reject, the loader's key tuples derived from them, and the spec classes
as pydantic dataclasses."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from kstream.errors import ConfigError
from kstream.pipeline import formats, load, operators, windows
from kstream.pipeline.load import fingerprint, load_pipeline, load_pipeline_text
from kstream.pipeline.model import (
    AGGREGATION_KEYS,
    ITEM_KEYS,
    ITEM_MODELS,
    OPERATOR_KINDS,
    SCHEMA_ID,
    WINDOW_MODELS,
    PipelineFile,
    keys_of,
    merged_keys,
    pipeline_json_schema,
)
from kstream.pipeline.spec import (
    AGGREGATION_KINDS,
    FilterSpec,
    FlatMapSpec,
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
    SourceSpec,
    WindowSpec,
    WindowType,
)
from kstream.pipeline.view import operator_to_dict

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
DOCS = sorted((REPO / "docs").glob("*.md"))

MINIMAL = {"pipeline": "p", "sources": [{"topic": "in"}], "sinks": [{"topic": "out"}]}
COUNT_WINDOW = {"type": "count", "size": 3, "aggregate": {"n": "count"}}
GLOBAL_WINDOW = {"type": "global", "aggregate": {"n": "count"}}


def plain(text: str) -> Any:
    """YAML text as plain Python data (what an editor's schema validator sees)."""
    return YAML(typ="safe").load(text)


def with_(**changes: Any) -> dict[str, Any]:
    return {**MINIMAL, **changes}


# -- the JSON Schema --------------------------------------------------------------------------


def test_the_schema_is_json_with_an_id_a_title_and_the_2020_12_dialect() -> None:
    schema = json.loads(json.dumps(pipeline_json_schema()))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["title"] == "kstream pipeline"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["pipeline", "sources", "sinks"]


def test_every_key_has_a_description_for_editor_help() -> None:
    schema = pipeline_json_schema()
    missing = [
        f"{name}.{key}"
        for name, definition in schema["$defs"].items()
        for key, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    missing += [key for key, prop in schema["properties"].items() if not prop.get("description")]
    assert missing == []
    assert all(definition.get("description") for definition in schema["$defs"].values())


def test_the_schema_is_valid_draft_2020_12_and_agrees_with_the_model() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = pipeline_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        assert list(validator.iter_errors(plain(path.read_text()))) == [], path.name
    assert not validator.is_valid(with_(sinks=[{"topic": "out", "partition": 2}]))
    assert not validator.is_valid(with_(operators=[{"filter": {"expr": "x", "python": "m:f"}}]))


# -- what the model accepts ----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_against_the_model(path: Path) -> None:
    load_pipeline(path)  # kstream validate accepts it
    PipelineFile.model_validate(plain(path.read_text()))


def _doc_snippets() -> list[tuple[str, Any]]:
    """Every ``yaml`` block of docs/, completed to a whole file when it is a fragment (a
    mapping without ``pipeline``, a list of operators, sources or sinks): each completion
    the loader accepts."""
    source, sink = [{"topic": "in"}], [{"topic": "out"}]
    found: list[tuple[str, Any]] = []
    for md in DOCS:
        text = md.read_text(encoding="utf-8")
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            where = f"{md.name}:{text[: match.start()].count(chr(10)) + 1}"
            try:
                data = plain(match.group(1))
            except Exception:  # e.g. a block showing alternatives with duplicate keys
                continue
            if isinstance(data, dict):
                if "pipeline" not in data:
                    data = {**MINIMAL, "sources": source, "sinks": sink, **data}
                candidates = [data]
            elif isinstance(data, list):
                candidates = [
                    {**MINIMAL, "operators": data},
                    {**MINIMAL, "sources": data},
                    {**MINIMAL, "sinks": data},
                ]
            else:
                continue
            for candidate in candidates:
                try:
                    load_pipeline_text(json.dumps(candidate), str(REPO / "snippet.yaml"))
                except ConfigError:
                    continue
                found.append((where, candidate))
    return found


DOC_SNIPPETS = _doc_snippets()


def test_the_docs_have_pipeline_snippets_to_check() -> None:
    assert len(DOC_SNIPPETS) >= 8
    assert {where.split(":")[0] for where, _ in DOC_SNIPPETS} >= {
        "pipeline.md",
        "time-and-windows.md",
    }


@pytest.mark.parametrize(("where", "data"), DOC_SNIPPETS, ids=[w for w, _ in DOC_SNIPPETS])
def test_every_doc_snippet_that_validates_also_validates_against_the_model(
    where: str, data: Any
) -> None:
    PipelineFile.model_validate(data)
    validator = _json_schema_validator()
    if validator is not None:
        assert list(validator.iter_errors(data)) == []


def _json_schema_validator() -> Any:
    """A validator of the JSON Schema itself (what editors use); None without jsonschema."""
    try:
        import jsonschema
    except ImportError:
        return None
    return jsonschema.Draft202012Validator(pipeline_json_schema())


def test_the_open_mappings_and_the_short_forms() -> None:
    text = """
    pipeline: p
    kafka: {bootstrap.servers: "b:9092", acks: all, enable.idempotence: true, linger.ms: 5}
    schema_registry: {url: "http://r:8081", basic.auth.user.info: "u:p"}
    checkpoint: {interval: 500, guarantee: at_least_once}
    sources:
      - {topic: in, event_time: ts, watermark: null}
    operators:
      - {key_by: origin, id: 7}
      - {branch: {slow: "dep_delay > 60", default: rest}}
      - {from: branch-1.slow, map: {fields: {one: 1, delay_h: "dep_delay / 60"}}}
    sinks:
      - {topic: out, from: [map-2, branch-1.rest]}
    """
    model = PipelineFile.model_validate(plain(text))
    assert model.schema_registry is not None
    assert [type(item).__name__ for item in model.operators or []] == [
        "KeyByItem",
        "BranchItem",
        "MapItem",
    ]


# -- what it rejects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"pipelines": "p"},
        {"sources": [{"topic": "in", "watermarks": {}}]},
        {"sources": [{"topic": "in", "watermark": {"idle": "30s"}}]},
        {"sinks": [{"topic": "out", "partition": 2}]},
        {"checkpoint": {"every": "5s"}},
        {"operators": [{"filter": "x > 0", "name": "f"}]},
        {"operators": [{"flat_map": {"explode": "xs", "as": "x", "keep": True}}]},
        {"operators": [{"id": "w", "window": {**COUNT_WINDOW, "gap": "1h"}}]},
        {"operators": [{"id": "w", "window": {**GLOBAL_WINDOW, "trigger": {"after": 2}}}]},
    ],
)
def test_an_unknown_key_fails_schema_validation(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        PipelineFile.model_validate(with_(**changes))
    assert "extra_forbidden" in {error["type"] for error in info.value.errors()}


@pytest.mark.parametrize(
    "operator",
    [
        {"id": "x"},  # no operator key
        {"filtre": "x > 0"},  # a misspelt one
        {"filter": {"expr": "x > 0", "python": "m:f"}},  # exactly one of expr and python
        {"flat_map": {"as": "x"}},  # neither python nor explode
        {"key_by": "k", "filter": "x > 0"},  # two operator keys
        {"window": {"type": "tumbling", "size": "1h", "aggregate": {"n": "count"}}},  # no id
        {"id": "w", "window": {"type": "hopping", "aggregate": {"n": "count"}}},
        {"id": "w", "window": {"type": "tumbling", "size": "1 hour", "aggregate": {"n": "count"}}},
        {"id": "w", "window": {"type": "count", "size": "1h", "aggregate": {"n": "count"}}},
        {"id": "w", "window": {"type": "global", "aggregate": {}}},
        {"id": "w", "window": {"type": "global", "aggregate": {"n": {"avg": "x", "max": "x"}}}},
        {"union": ["only-one"]},
        {"map": {"python": "not a ref"}},
    ],
)
def test_a_malformed_operator_fails_schema_validation(operator: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PipelineFile.model_validate(with_(operators=[operator]))


def test_an_item_without_an_operator_key_names_the_problem() -> None:
    with pytest.raises(ValidationError) as info:
        PipelineFile.model_validate(with_(operators=[{"id": "x"}]))
    (error,) = info.value.errors()
    assert error["type"] == "operator_kind"
    assert error["loc"] == ("operators", 0)


# -- the loader's key tuples come from the models -------------------------------------------


def test_the_loaders_key_tuples_are_the_model_fields() -> None:
    models = PipelineFile.model_fields
    assert tuple(models) == load.TOP_KEYS
    assert load.TOP_REQUIRED == ("pipeline", "sources", "sinks")
    assert load.SOURCE_KEYS == (
        "topic", "id", "name", "format", "key_format", "schema", "writer_schema",
        "key_schema", "time", "event_time", "watermark", "on_error", "dead_letter_topic", "table",
        "metadata", "key_fields", "key_fields_prefix",
    )  # fmt: skip
    assert load.SINK_KEYS == (
        "topic", "name", "from", "format", "key_format", "schema", "key_schema", "partitions",
        "on_error", "dead_letter_topic", "key_fields", "key_fields_prefix", "value_fields_include",
        "value_field",
    )  # fmt: skip
    assert load.WATERMARK_KEYS == (
        "strategy", "max_out_of_orderness", "idle_timeout", "max_future_skew",
    )  # fmt: skip
    assert (load.CHECKPOINT_KEYS, load.EVENT_TIME_KEYS) == (
        ("interval", "guarantee"),
        ("field", "unit"),
    )
    assert ITEM_KEYS == operators.ITEM_KEYS == ("id", "from", "on_error", "dead_letter_topic")
    assert operators.FLAT_MAP_KEYS == ("python", "explode", "as", "keep_empty")
    assert operators.KEY_BY_KEYS == ("expr", "python", "partitions")
    assert operators.STATEFUL_KINDS == ("window", "process", "join", "dedup", "top_n")
    assert operators.PROCESS_KEYS == ("python", "state", "ports")
    assert merged_keys(*WINDOW_MODELS.values()) == windows.WINDOW_KEYS
    assert set(windows.WINDOW_KEYS) == {
        "type", "size", "slide", "step", "gap", "offset", "late_rule", "allowed_lateness",
        "late_topic", "emit", "accumulation", "trigger", "state_ttl", "aggregate",
    }  # fmt: skip
    assert windows.TRIGGER_KEYS == ("every", "count")
    assert formats.FORMATS == ("json", "string", "bytes", "avro")
    assert formats.POLICIES == ("fail", "skip", "dead_letter")


def test_the_window_key_tables_follow_the_window_models() -> None:
    assert get_args(WindowType) == windows.WINDOW_TYPES
    assert windows._KEY_TYPES == {
        "size": ("tumbling", "sliding", "cumulate", "count"),
        "slide": ("sliding", "count"),
        "step": ("cumulate",),
        "offset": ("tumbling", "sliding", "cumulate"),
        "late_rule": ("sliding", "cumulate"),
        "gap": ("session",),
        "allowed_lateness": ("tumbling", "sliding", "cumulate", "session"),
        "late_topic": ("tumbling", "sliding", "cumulate", "session"),
        "accumulation": ("tumbling", "sliding", "cumulate", "session", "count"),
        "trigger": ("tumbling", "sliding", "cumulate", "session", "global"),
        "state_ttl": ("global",),
    }
    assert windows._REQUIRED_BY_TYPE == {
        "tumbling": ("size",),
        "sliding": ("size", "slide"),
        "cumulate": ("size", "step"),
        "session": ("gap",),
        "count": ("size",),
        "global": (),
    }
    for wtype, model in WINDOW_MODELS.items():
        assert set(keys_of(model)) <= set(windows.WINDOW_KEYS), wtype


def test_the_operator_kinds_are_the_item_models_and_the_spec_kinds() -> None:
    assert OPERATOR_KINDS == (
        "filter", "map", "flat_map", "key_by", "window", "union", "branch", "process", "join",
        "dedup", "top_n",
    )  # fmt: skip
    assert operators.OPERATOR_KINDS == OPERATOR_KINDS
    for kind, model in ITEM_MODELS.items():
        assert [key for key in keys_of(model) if key not in ITEM_KEYS] == [kind]
    spec_kinds = [cls.__dataclass_fields__["kind"].default for cls in get_args(OperatorSpec)]
    # dedup and top_n: ProcessSpecs (built-in functions)
    assert (*spec_kinds, "dedup", "top_n") == OPERATOR_KINDS
    assert (*AGGREGATION_KINDS, "python") == AGGREGATION_KEYS


# -- the spec classes are pydantic dataclasses --------------------------------------------------


def test_spec_classes_stay_plain_frozen_dataclasses() -> None:
    spec = KeyBySpec(id="k", expr="origin", inputs=(PortRef("in"),))
    assert dataclasses.is_dataclass(spec)
    assert [f.name for f in dataclasses.fields(spec)][-2:] == ["inputs", "kind"]
    assert dataclasses.asdict(spec)["kind"] == "key_by"
    moved = dataclasses.replace(spec, id="k2")
    assert moved == KeyBySpec(id="k2", expr="origin", inputs=(PortRef("in"),))
    assert hash(moved) == hash(KeyBySpec(id="k2", expr="origin", inputs=(PortRef("in"),)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.id = "x"  # type: ignore[misc]


def test_spec_construction_checks_types_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        FilterSpec(id="f", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        FilterSpec(id="f", kind="map")  # type: ignore[arg-type]
    with pytest.raises((ValidationError, TypeError)):
        FilterSpec(id="f", bogus=1)  # type: ignore[call-arg]
    maybe: Any = "maybe"
    with pytest.raises(ValidationError):
        dataclasses.replace(FlatMapSpec(id="f"), keep_empty=maybe)


def test_pipeline_operators_are_discriminated_by_kind() -> None:
    source = SourceSpec(name="in", topic="in")
    window = WindowSpec(id="w", type="tumbling", aggregations=(), size_ms=1000)
    spec = PipelineSpec(name="p", path="<t>", sources=(source,), operators=(window,), sinks=())
    assert spec.operators[0] is window  # instances are kept, not copied
    raw: Any = [{"kind": "filter", "id": "f", "expr": "x > 0"}]
    built = PipelineSpec(name="p", path="<t>", sources=(source,), operators=raw, sinks=())
    assert built.operators == (FilterSpec(id="f", expr="x > 0"),)
    unknown: Any = [{"kind": "nope", "id": "x"}]
    with pytest.raises(ValidationError):
        PipelineSpec(name="p", path="<t>", sources=(), operators=unknown, sinks=())


def test_the_kind_field_leaves_operator_dicts_and_fingerprints_unchanged() -> None:
    body = operator_to_dict(KeyBySpec(id="k", expr="origin", inputs=(PortRef("in"),)))
    assert list(body) == ["kind", "id", "expr", "python", "partitions", "on_error",
                          "dead_letter_topic", "from"]  # fmt: skip
    pinned = {  # computed before the spec classes became pydantic dataclasses
        "flights-hourly.yaml": "d5986f16115ccac6a8e992991a4240b38c0addc8af5306fa1b8a2ea596f806e2",
        "flights-late.yaml": "95c1960a79c708bc60b1c3ac5b9d7cd46033d63480927886a96493537bf37969",
        "flights-sessions.yaml": "c2d239bd192950e7cdc3ec90527e816173c327ea095a0489773bd6e0e7a16aa8",
    }
    got = {path.name: fingerprint(load_pipeline(path)) for path in EXAMPLES if path.name in pinned}
    assert got == pinned
