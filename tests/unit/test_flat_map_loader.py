"""Loading ``flat_map`` items: both forms, the default id, every mistake reported with its line,
key path and a fix, and the views (``spec_to_dict``, fingerprint) of a flat_map."""

from __future__ import annotations

import textwrap

import pytest

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.load import fingerprint, load_pipeline_text, spec_to_dict
from kstream.pipeline.spec import FlatMapSpec, PortRef

HEAD = "pipeline: p\nsources:\n  - topic: in\nsinks:\n  - topic: out\noperators:\n"  # 6 lines


def load(ops: str) -> tuple[FlatMapSpec, ...]:
    spec = load_pipeline_text(HEAD + textwrap.dedent(ops), "p.yaml")
    return tuple(op for op in spec.operators if isinstance(op, FlatMapSpec))


def issues_of(ops: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(HEAD + textwrap.dedent(ops), "p.yaml")
    return info.value.issues


def only_issue(ops: str) -> ConfigIssue:
    issues = issues_of(ops)
    assert len(issues) == 1, [i.render() for i in issues]
    return issues[0]


def test_both_forms_load_with_the_default_id() -> None:
    ops = """\
      - filter: "x > 0"
      - flat_map: {python: "udfs:split"}
      - id: reasons
        flat_map: {explode: "coalesce(reasons, [])", as: reason, keep_empty: true}
        on_error: skip
    """
    assert load(ops) == (
        FlatMapSpec(id="flat_map-1", python="udfs:split", inputs=(PortRef("filter-0"),)),
        FlatMapSpec(
            id="reasons",
            explode="coalesce(reasons, [])",
            as_field="reason",
            keep_empty=True,
            on_error="skip",
            inputs=(PortRef("flat_map-1"),),
        ),
    )


def test_python_and_explode_cannot_be_combined() -> None:
    issue = only_issue("  - flat_map:\n      python: udfs:split\n      explode: xs\n")
    assert (issue.line, issue.key_path) == (9, "operators[0].flat_map.explode")
    assert issue.message == "'python' and 'explode' cannot be combined"
    assert "flat_map: {explode: <expression>, as: <field>}" in issue.hint


def test_one_of_python_and_explode_is_needed() -> None:
    issue = only_issue("  - flat_map: {as: x}\n")
    assert (issue.line, issue.key_path) == (7, "operators[0].flat_map")
    assert issue.message == "flat_map needs 'python' or 'explode'"


def test_explode_needs_as() -> None:
    issue = only_issue("  - filter: a\n  - flat_map: {explode: xs}\n")
    assert (issue.line, issue.key_path) == (8, "operators[1].flat_map")
    assert "needs 'as'" in issue.message and "as: reason" in issue.hint


@pytest.mark.parametrize("key", ["as: x", "keep_empty: true"])
def test_as_and_keep_empty_go_only_with_explode(key: str) -> None:
    issue = only_issue(f"  - flat_map:\n      python: udfs:split\n      {key}\n")
    assert (issue.line, issue.key_path) == (9, f"operators[0].flat_map.{key.split(':')[0]}")
    assert "goes only with 'explode'" in issue.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1", "expected a field name, got a number (1)"),
        ("''", "expected a field name, got a string ('')"),
        ("a.b", "'a.b' is a nested path; 'as' names a top-level field"),
        ("[a]", "expected a field name, got a list"),
    ],
)
def test_as_must_be_a_field_name(value: str, message: str) -> None:
    issue = only_issue(f"  - flat_map:\n      explode: xs\n      as: {value}\n")
    assert (issue.line, issue.key_path, issue.message) == (9, "operators[0].flat_map.as", message)


def test_keep_empty_must_be_a_boolean() -> None:
    issue = only_issue("  - flat_map: {explode: xs, as: x, keep_empty: 1}\n")
    assert issue.key_path == "operators[0].flat_map.keep_empty"
    assert issue.message == "expected true or false, got a number (1)"


@pytest.mark.parametrize(("typo", "meant"), [("explod", "explode"), ("keep_emtpy", "keep_empty")])
def test_unknown_keys_get_a_suggestion(typo: str, meant: str) -> None:
    issues = issues_of(f"  - flat_map: {{explode: xs, as: x, {typo}: true}}\n")
    assert [(i.line, i.key_path, i.message, i.hint) for i in issues] == [
        (7, f"operators[0].flat_map.{typo}", f"unknown key '{typo}'", f"did you mean '{meant}'?")
    ]


def test_a_misspelled_kind_suggests_flat_map() -> None:
    issue = only_issue("  - flatmap: {explode: xs, as: x}\n")
    assert issue.message == "unknown operator 'flatmap'"
    assert issue.hint.startswith("did you mean 'flat_map'?")
    assert "filter, map, flat_map, key_by, window" in issue.hint


def test_the_body_must_be_a_mapping() -> None:
    issue = only_issue("  - flat_map: udfs:split\n")
    assert issue.message == "expected a mapping, got a string ('udfs:split')"
    assert issue.hint.startswith("write flat_map: {python: module:function}")


def test_a_bad_expression_and_a_bad_reference_are_reported_at_load() -> None:
    issues = issues_of("  - flat_map: {explode: 'xs +', as: x}\n  - flat_map: {python: udfs}\n")
    assert [(i.line, i.key_path) for i in issues] == [
        (7, "operators[0].flat_map.explode"),
        (8, "operators[1].flat_map.python"),
    ]
    assert issues[0].message.startswith("invalid expression 'xs +'")
    assert "module:function" in issues[1].hint


def test_spec_to_dict_shows_the_yaml_keys_and_the_fingerprint_ignores_flat_maps() -> None:
    window = "  - id: w\n    window: {type: tumbling, size: 1h, aggregate: {n: count}}\n"
    exploding = load_pipeline_text(HEAD + "  - flat_map: {explode: xs, as: x}\n" + window)
    plain = load_pipeline_text(HEAD + window)
    assert spec_to_dict(exploding)["operators"][0] == {
        "kind": "flat_map",
        "id": "flat_map-0",
        "python": None,
        "explode": "xs",
        "as": "x",
        "keep_empty": False,
        "on_error": None,
        "dead_letter_topic": None,
        "from": ["in"],
    }
    assert fingerprint(exploding) == fingerprint(plain)
