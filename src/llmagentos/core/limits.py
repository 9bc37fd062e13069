"""Limits on what input may ask for: YAML size, depth and alias expansion; finite numbers; seeds; names.

Every number, name and YAML document that reaches the project from a person, a spec or a run
directory passes through one of these checks before any work starts, so bad input is refused with
one sentence (:class:`UsageError`, exit status 2) instead of exhausting memory, hanging on a NaN or
writing outside the chosen folder.
"""

from __future__ import annotations

import math
import re
from typing import Any

from llmagentos.core.errors import UsageError

#: a spec larger than this is not a spec a person wrote
MAX_YAML_BYTES = 1_000_000
#: deeper nesting than any spec needs (and far below Python's recursion limit)
MAX_YAML_DEPTH = 64
#: values a document may hold once its aliases are expanded (a 463-byte "billion laughs" would reach 10**8)
MAX_YAML_VALUES = 100_000
#: seeds feed 32-bit generators (numpy's legacy seeding, gymnasium's spaces)
SEED_LIMIT = 2**32
#: jobs one sweep may ask for (seeds, and grid points times seeds)
MAX_JOBS = 10_000
#: experiment, agent and file names
MAX_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=,+-]*")


def load_yaml(text: str | bytes, where: str) -> Any:
    """``yaml.safe_load(text)`` within the limits above; anything beyond them, or not YAML, raises UsageError."""
    import yaml

    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise UsageError(f"{where} is {len(text)} bytes; a spec may have at most {MAX_YAML_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"{where} is not UTF-8 text (byte {err.start} cannot be decoded)") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UsageError(f"{where} is larger than {MAX_YAML_BYTES} bytes, the most a spec may have")
    try:
        _check_depth(text, where)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, where)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise UsageError(f"{where} is not valid YAML: {str(err).splitlines()[0]}") from None
    except (ValueError, TypeError, RecursionError) as err:  # an int past Python's digit limit, an unhashable key
        if isinstance(err, UsageError):
            raise
        raise UsageError(f"{where} holds a value YAML cannot represent here: {str(err).splitlines()[0]}") from None


def _check_depth(text: str, where: str) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH, reading the event stream (no recursion, no objects built)."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise UsageError(f"{where} nests lists or mappings more than {MAX_YAML_DEPTH} deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _check_expansion(root: Any, where: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_VALUES values, or refer to themselves."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_YAML_VALUES:
                raise UsageError(f"{where} expands (through its aliases) to more than {MAX_YAML_VALUES} values")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise UsageError(f"{where} has an alias that refers to itself")
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise UsageError(f"{where} has an alias that refers to itself")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_finite(value: Any, where: str) -> Any:
    """``value`` unchanged if every number in it (lists and mappings included) is finite; else UsageError."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise UsageError(f"{path}: {item!r} is not allowed; numbers must be finite")
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}", v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return value


def check_seed(seed: Any, where: str = "seed") -> int:
    """A seed: an integer in [0, 2**32), what every generator the project uses accepts."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise UsageError(f"{where} must be an integer from 0 to {SEED_LIMIT - 1}, got {seed!r}")
    return seed


def check_name(name: Any, what: str) -> str:
    """A name that is safe as one path component: letters, digits and ``_ . = , + -``, no ``/`` or ``..``."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name) \
            or ".." in name:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise UsageError(f"{what} {shown} is not allowed: use at most {MAX_NAME_LENGTH} letters, digits and "
                         "'_', '.', '=', ',', '+', '-' (no '/', no '..')")
    return name
