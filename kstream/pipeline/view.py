"""Plain views of a :class:`~kstream.pipeline.spec.PipelineSpec`: a JSON-able dict and a
fingerprint.

:func:`spec_to_dict` is for display and logs (secrets in ``kafka`` are masked);
:func:`fingerprint` identifies the pipeline's *state layout*: it changes when a stateful
operator, the source topic or the pipeline name changes, and not for Kafka client settings,
filters, maps, flat_maps or sinks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from kstream.pipeline.spec import (
    FlatMapSpec,
    KeyBySpec,
    MapSpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
    WindowSpec,
)

__all__ = [
    "MASK",
    "fingerprint",
    "is_secret_setting",
    "operator_kind",
    "operator_to_dict",
    "redact",
    "remember_secrets",
    "spec_to_dict",
]

MASK = "***"
_SECRET_MARKERS = ("password", "secret", "token", "sasl.jaas", "basic.auth.user.info")
#: Values of secret settings seen in this process (see :func:`remember_secrets`).
_KNOWN_SECRETS: set[str] = set()
#: Error-policy fields: changing how bad records are handled does not change the state layout;
#: nor does ``from`` (where a window's records come from; the key_by before it is checked by
#: the savepoint compatibility rules); nor does ``state_ttl_ms``: a changed retention restores
#: the same state (the global window re-indexes it, :mod:`kstream.operators.window.global_agg`).
_POLICY_FIELDS = ("on_error", "dead_letter_topic", "from", "state_ttl_ms")
#: Window fields added after the fingerprint was defined, with their defaults: left out of the
#: fingerprint when at the default, so existing pipelines (and their state) keep theirs.
_LATER_DEFAULTS = {"accumulation": "accumulating", "step_ms": None, "late_rule": "datastream"}


def is_secret_setting(name: str) -> bool:
    """Whether a librdkafka setting holds a secret (``sasl.password``, ``ssl.key.password``,
    ``sasl.jaas.config``, ``sasl.oauthbearer.client.secret``, any ``*token*`` ...)."""
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def remember_secrets(settings: Any) -> None:
    """Record the values of the secret settings in ``settings`` (a mapping), so that
    :func:`redact` hides them from every later message of this process, including messages
    formatted where the settings are not at hand (library errors, the CLI's error line)."""
    for name, value in dict(settings or {}).items():
        if is_secret_setting(str(name)) and value is not None and str(value):
            _KNOWN_SECRETS.add(str(value))


def redact(text: str, settings: Any = None) -> str:
    """``text`` with every secret value replaced by ``***``: the secret settings of
    ``settings`` (a mapping, optional) and every secret remembered by :func:`remember_secrets`.
    A value of ``user:password`` form (``basic.auth.user.info``, URLs) also hides its password
    part; ``sasl.jaas.config`` values also hide their ``password="..."`` fields, and URLs their
    ``user:password@`` password."""
    remember_secrets(settings)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
        _, sep, password = secret.partition(":")
        if sep and len(password) >= 4 and password in text:
            text = text.replace(password, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _PASSWORD_FIELD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


_URL_PASSWORD = re.compile(r"(\w+://[^/\s:@]+:)[^/\s@]+@")
_PASSWORD_FIELD = re.compile(r"""((?:password|secret|token)\s*=\s*["']?)([^"'\s;]+)(["']?)""", re.I)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (``dataclasses.asdict`` keeps tuples)."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def operator_kind(op: OperatorSpec) -> str:
    """The YAML key of an operator's kind: ``filter``, ``map``, ``flat_map``, ``key_by``,
    ``window``, ``union`` or ``branch`` (the spec's ``kind`` field)."""
    return op.kind


def operator_to_dict(op: OperatorSpec) -> dict[str, Any]:
    """One operator as ``{"kind": "window", "id": ..., <its fields>}``.

    ``kind`` comes first (the spec's ``kind`` field, the last of its dataclass fields, is moved
    there), so the dict, and the fingerprint made of it, are the same as before the field.

    ``MapSpec.fields`` becomes a ``{name: expression}`` mapping (order kept);
    ``FlatMapSpec.as_field`` is shown as ``as``, its YAML key; ``inputs`` as ``from``, a list
    of ``node`` / ``node.port``.
    """
    body = _with_from(_plain(dataclasses.asdict(op)), op.inputs)
    body.pop("kind", None)
    if isinstance(op, MapSpec):
        body["fields"] = dict(op.fields)
    elif isinstance(op, FlatMapSpec):
        body = {("as" if name == "as_field" else name): value for name, value in body.items()}
    elif isinstance(op, KeyBySpec):
        for flag in ("tombstones", "keep_key"):  # shown only on the planner's repartitions
            if not getattr(op, flag):
                del body[flag]
    return {"kind": operator_kind(op), **body}


def spec_to_dict(spec: PipelineSpec) -> dict[str, Any]:
    """A JSON-able dict of ``spec`` with secret Kafka settings replaced by ``"***"``.

    Keys: name, group, group_id, kafka, checkpoint, sources, operators (each with a ``kind``),
    sinks. The file path is left out: it is where the pipeline was read from, not what it is.
    """
    kafka = {k: MASK if is_secret_setting(k) else v for k, v in spec.kafka.items()}
    registry = {
        k: MASK if is_secret_setting(k) else redact(v) for k, v in spec.schema_registry.items()
    }
    return {
        "name": spec.name,
        "group": spec.group,
        "group_id": spec.group_id,
        "kafka": kafka,
        "schema_registry": registry,
        "checkpoint": dataclasses.asdict(spec.checkpoint),
        "sources": [_plain(dataclasses.asdict(source)) for source in spec.sources],
        "operators": [operator_to_dict(op) for op in spec.operators],
        "sinks": [_with_from(_plain(dataclasses.asdict(s)), s.inputs) for s in spec.sinks],
    }


def _with_from(body: dict[str, Any], inputs: tuple[PortRef, ...]) -> dict[str, Any]:
    body.pop("inputs", None)
    body["from"] = [str(ref) for ref in inputs]
    return body


def fingerprint(spec: PipelineSpec) -> str:
    """SHA-256 hex digest of the canonical JSON of the pipeline name, the source topic(s)
    and the full definitions of the stateful operators (windows), in declaration order.

    Kafka settings, the consumer group, stateless operators, sinks, error policies
    (``on_error``, ``dead_letter_topic``) and the idle state retention (``state_ttl_ms``) do
    not take part; nor does ``accumulation`` when it is the default ``accumulating``
    (pipelines written before the key existed keep their fingerprint).
    """
    stateful = [operator_to_dict(op) for op in spec.operators if isinstance(op, WindowSpec)]
    for body in stateful:
        for name in _POLICY_FIELDS:
            body.pop(name, None)
        for name, default in _LATER_DEFAULTS.items():
            if body.get(name) == default:
                del body[name]
    payload = {
        "pipeline": spec.name,
        "source_topics": [source.topic for source in spec.sources],
        "stateful": stateful,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
