"""Pydantic models generated from the config dataclasses, and validation whose errors name the field path.

The kernel's job kinds validate their spec blocks with these; ``llmagentos.config`` (the spec format)
re-exports them. A config dataclass stays the one definition of its fields: every model here is
generated from it on demand, never written by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from llmagentos.core.config import bounds_of
from llmagentos.core.errors import UsageError
from llmagentos.learners import registry

def _pydantic_field(f: dataclasses.Field, hint: Any) -> tuple[Any, Any]:
    """A dataclass field as pydantic's (type, Field): its default or default factory, its doc, and its bounds in
    the JSON Schema (checked by ``check_bounds`` with the config's own sentences, not by pydantic)."""
    doc = f.metadata.get("doc", "")
    schema_names = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
    extra = {"json_schema_extra": {schema_names[k]: v for k, v in bounds_of(f).items()}} if bounds_of(f) else {}
    if f.default is not dataclasses.MISSING:
        return hint, Field(default=f.default, description=doc, **extra)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return hint, Field(default_factory=f.default_factory, description=doc, **extra)
    return hint, Field(description=doc, **extra)


@functools.lru_cache(maxsize=None)
def config_model(config_cls: type, name: str | None = None) -> type[BaseModel]:
    """A pydantic model with ``config_cls``'s fields, types, defaults and docs; unknown keys are refused.

    The dataclass stays the one definition: this model is generated from it on demand.
    """
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: _pydantic_field(f, hints[f.name]) for f in dataclasses.fields(config_cls)}
    model = create_model(name or config_cls.__name__, __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields)
    model.__doc__ = (config_cls.__doc__ or "").strip() or f"Fields of {config_cls.__name__}."
    return model


def algo_config_model(algo: str) -> type[BaseModel]:
    """The generated pydantic model of a registered algorithm's config (``UsageError`` if unknown)."""
    entry = registry.get(algo)
    return config_model(registry.load(entry.config), model_name(algo, "Config"))


def model_name(algo: str, suffix: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", algo) if part) + suffix


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``path.to.field: reason``, joined by '; '."""
    problems = []
    for e in err.errors():
        path = prefix
        for part in e["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += ("." if path else "") + str(part)
        if e["type"] == "extra_forbidden":
            reason = "unknown key"
        elif e["type"] == "missing":
            reason = "required key is missing"
        else:
            reason = e["msg"]
            if "input" in e and not isinstance(e["input"], (dict, list)):
                reason += f" (got {e['input']!r})"
        problems.append(f"{path or '<spec>'}: {reason}")
    return "; ".join(problems)


def validate_model(model: Any, raw: Any, prefix: str) -> Any:
    """``model`` (a pydantic model class or any type) validated from ``raw``; errors become UsageError with paths."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(raw)
        return TypeAdapter(model).validate_python(raw)
    except ValidationError as err:
        raise UsageError(f"invalid spec: {format_validation_error(err, prefix)}") from None



@functools.lru_cache(maxsize=None)
def train_block_model(algo: str) -> type[BaseModel]:
    """The train block for one algorithm: TrainSpec's fields, with ``config`` typed by the algorithm's config."""
    from llmagentos.kernel.run import TrainSpec, train_block_fields

    hints = typing.get_type_hints(TrainSpec)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TrainSpec):
        if f.name not in train_block_fields():
            continue
        doc = f.metadata.get("doc", "")
        if f.name == "algo":
            fields["algo"] = (Literal[algo], Field(description=doc or "algorithm name (llmagentos algos)"))
        elif f.name == "config":
            cfg = algo_config_model(algo)
            fields["config"] = (cfg, Field(default_factory=cfg, description=doc or f"{algo} config fields"))
        else:
            fields[f.name] = _pydantic_field(f, hints[f.name])
    return create_model(model_name(algo, "Train"), __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields)


class FamilyTasksBlock(BaseModel):
    """The fields every job kind over a task family shares: which family, its options, and which of its tasks."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    family: str = Field(description="task family: cartpole, goal-grid or pointnav")
    family_options: dict[str, Any] = Field(default_factory=dict, description="options of the family (goal-grid: size, goals, wall_sets, slips; cartpole: ranges)")
    tasks: int | list[dict[str, Any]] = Field(default=4, description="number of tasks drawn with task_seed, or the descriptors themselves")
    task_seed: int = Field(default=0, description="seed that draws the tasks (the same tasks for every run seed)")
