"""Flink SQL for kstream: the dialect (:mod:`~kstream.sql.dialect`) and its compiler to the same
pipeline spec as YAML (:mod:`~kstream.sql.compile`); docs/sql.md."""

from __future__ import annotations

from pathlib import Path

from kstream.pipeline.load import load_pipeline
from kstream.pipeline.spec import PipelineSpec
from kstream.sql.compile import load_sql, load_sql_text

__all__ = ["is_sql", "load_job", "load_sql", "load_sql_text"]


def is_sql(path: str | Path) -> bool:
    """Whether ``path`` names a Flink SQL script (``.sql``) rather than a pipeline YAML file."""
    return Path(path).suffix.lower() == ".sql"


def load_job(path: str | Path) -> PipelineSpec:
    """The spec of a job file: a ``.sql`` script (Flink SQL) or a pipeline YAML file.

    Raises:
        ConfigError: the file is invalid (every issue found, at its line).
    """
    return load_sql(path) if is_sql(path) else load_pipeline(path)
