"""Building blocks of the pipeline file models (:mod:`kstream.pipeline.model`).

The value types of a pipeline file (names, durations, expressions, ``module:function``
references, ...) as annotated pydantic types, the base class of every model (unknown keys
forbidden, field docstrings as descriptions, "exactly one of" choices), and the functions that
derive the loader's key tuples from the models.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from kstream.pipeline.durations import DURATION_PATTERN
from kstream.pipeline.yamlnodes import NAME_PATTERN, PYTHON_REF

__all__ = [
    "Duration",
    "Expression",
    "FileModel",
    "Name",
    "PositiveInt",
    "PythonRef",
    "Scalar",
    "Text",
    "absent",
    "keys_of",
    "members",
    "merged_keys",
    "required_of",
]

#: A non-empty text (not only blanks).
Text = Annotated[str, Field(pattern=r"\S")]
#: A node, topic or pipeline name: ``[a-zA-Z0-9._-]+``.
Name = Annotated[str, Field(pattern=NAME_PATTERN.pattern)]
#: ``500ms``, ``10s``, ``5m``, ``1h``, ``1d``, or an integer of milliseconds.
Duration = Annotated[str, Field(pattern=DURATION_PATTERN.pattern)] | StrictInt
#: An expression (docs/expressions.md); a number is taken as its text.
Expression = Text | StrictInt | StrictFloat
#: ``module:function`` (or ``module:Class``).
PythonRef = Annotated[str, Field(pattern=PYTHON_REF.pattern)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
#: A size in bytes: ``64MB``, ``512KiB``, ``1GB`` or an integer of bytes (pydantic ByteSize).
Size = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*[A-Za-z]*\s*$")] | PositiveInt
#: A client setting's value.
Scalar = str | StrictInt | StrictFloat | StrictBool


def absent(description: str, alias: str | None = None) -> Any:
    """An optional key that may not be null: absent means its default (so the JSON Schema
    shows no ``default``). ``alias``: the YAML key when it is not a Python name (``from``)."""
    return Field(None, alias=alias, description=description, json_schema_extra=_no_default)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _one_of_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    keys = getattr(cls, "one_of", ())
    if keys:
        schema["oneOf"] = [{"required": [key]} for key in keys]


class FileModel(BaseModel):
    """Base of the file models: unknown keys are errors, field docstrings are descriptions.

    ``one_of``: keys of which exactly one must be written (a ``oneOf`` in the JSON Schema;
    ``ValueError`` from validation otherwise).
    """

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra=_one_of_schema,
        defer_build=True,  # built on first use (kstream schema, tests), not when the loader loads
    )
    one_of: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if self.one_of:
            names = {field.alias or name: name for name, field in type(self).model_fields.items()}
            present = [key for key in self.one_of if names[key] in self.model_fields_set]
            if len(present) != 1:
                raise ValueError(f"write exactly one of: {', '.join(self.one_of)}")
        return self


def keys_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The YAML keys of ``model`` (aliases, e.g. ``from``), in declaration order."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def required_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The required YAML keys of ``model``, in declaration order."""
    fields = model.model_fields.items()
    return tuple(field.alias or name for name, field in fields if field.is_required())


def merged_keys(*models: type[BaseModel]) -> tuple[str, ...]:
    """Every key of ``models``, each once: a key first seen in a later model goes just before
    the first of its own following keys already listed (else at the end)."""
    keys: list[str] = []
    for model in models:
        own = keys_of(model)
        for i, key in enumerate(own):
            if key not in keys:
                later = [other for other in own[i + 1 :] if other in keys]
                keys.insert(keys.index(later[0]) if later else len(keys), key)
    return tuple(keys)


def members(union: Any) -> tuple[Any, ...]:
    """The members of ``Annotated[A | B | ..., <discriminator>]``."""
    return get_args(get_args(union)[0])
