"""The Confluent schema registry, through confluent-kafka's ``SchemaRegistryClient``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from kstream.errors import (
    BrokerError,
    RecordError,
    UsageError,
)
from kstream.pipeline.view import redact, remember_secrets


class SchemaRegistry:
    """A Confluent schema registry, through confluent-kafka's ``SchemaRegistryClient``.

    Args:
        settings: the client's configuration: ``url`` and e.g. ``basic.auth.user.info``. A
            ``mock://NAME`` URL gives the library's in-memory registry; :func:`schema_registry`
            hands every user in a process the same instance per settings, so a mock registry
            is shared by ``produce``, ``run`` and ``tail`` running in one process.

    Raises:
        BrokerError: invalid settings (at construction), or the registry cannot be reached or
            refuses a request (see each method).
    """

    def __init__(self, settings: Mapping[str, str]) -> None:
        remember_secrets(settings)
        self.url = redact(str(settings.get("url", "")), settings)
        self._schema, client_class, self._error = _registry_api()
        try:
            self._client = client_class.new_client(dict(settings))
        except Exception as exc:  # ValueError, TypeError for bad settings
            raise BrokerError(redact(f"schema registry {self.url}: {exc}", settings)) from exc

    def schema(self, schema_id: int) -> tuple[str, list[str]]:
        """The Avro schema registered under ``schema_id`` as JSON text, and the texts of the
        schemas it references (dependencies first).

        Raises:
            RecordError: (``deserialize``) no schema has this id.
            BrokerError: the registry cannot be reached or fails.
        """
        try:
            found = self._client.get_schema(schema_id)
        except self._error as exc:
            if exc.http_status_code == 404:
                raise RecordError(
                    "deserialize", f"unknown schema id {schema_id} (not in the schema registry)"
                ) from exc
            raise self._failure(f"get schema {schema_id}", exc) from exc
        except Exception as exc:  # connection errors from the HTTP client
            raise self._failure(f"get schema {schema_id}", exc) from exc
        return str(found.schema_str), self._references(found, set())

    def _references(self, schema: Any, seen: set[str]) -> list[str]:
        texts: list[str] = []
        for ref in schema.references or []:
            if ref.subject in seen:
                continue
            seen.add(ref.subject)
            try:
                registered = self._client.get_version(ref.subject, ref.version)
            except Exception as exc:
                raise self._failure(f"get reference {ref.subject}", exc) from exc
            texts += self._references(registered.schema, seen)
            texts.append(str(registered.schema.schema_str))
        return texts

    def register(self, subject: str, schema_text: str) -> int:
        """Register an Avro schema under ``subject`` (an existing identical one keeps its id).

        Raises:
            BrokerError: the registry cannot be reached or refuses the schema (incompatible).
        """
        try:
            return int(self._client.register_schema(subject, self._schema(schema_text, "AVRO")))
        except Exception as exc:
            raise self._failure(f"register a schema under {subject}", exc) from exc

    def _failure(self, what: str, exc: Exception) -> BrokerError:
        return BrokerError(redact(f"schema registry {self.url}: cannot {what}: {exc}"))


def _registry_api() -> tuple[Any, Any, Any]:
    """``(Schema, SchemaRegistryClient, SchemaRegistryError)``, imported on first use (slow).

    The client's authlib dependency warns about its own httpx module when imported, after
    installing an "always" filter for its warnings: noise for our users, silenced by a filter
    placed in front of it.

    Raises:
        UsageError: confluent-kafka's ``schemaregistry`` extra is not installed.
    """
    try:
        with warnings.catch_warnings():
            import authlib.deprecate  # noqa: F401  (installs authlib's filter first)

            warnings.filterwarnings("ignore", message="The httpx module is deprecated")
            from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
            from confluent_kafka.schema_registry.error import SchemaRegistryError
    except ImportError as exc:
        raise UsageError(
            f"a schema registry needs confluent-kafka's schemaregistry extra ({exc}); "
            "pip install 'confluent-kafka[schemaregistry]'"
        ) from exc
    return Schema, SchemaRegistryClient, SchemaRegistryError


_REGISTRIES: dict[tuple[tuple[str, str], ...], SchemaRegistry] = {}


def schema_registry(settings: Mapping[str, str]) -> SchemaRegistry:
    """The process's :class:`SchemaRegistry` for ``settings`` (one per distinct settings).

    Raises:
        BrokerError: invalid settings.
    """
    key = tuple(sorted((str(k), str(v)) for k, v in settings.items()))
    registry = _REGISTRIES.get(key)
    if registry is None:
        registry = _REGISTRIES[key] = SchemaRegistry(settings)
    return registry
