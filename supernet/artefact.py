"""`best_arch.json`: a chosen arch that says what it is, so that no consumer needs `space=` again.

Written by `scripts/query.py` (and `scripts/search.py` through it), read by `scripts/retrain.py` and
`scripts/export.py`. Besides the arch, its score and costs, it records the space (`space.name`,
`space.config`), the data the costs are for (`data.name`, `data.input_shape`, `data.num_classes`),
the project version and the git commit. Files of earlier versions have no `space`: their readers
keep the configured space, as before.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from supernet.space import Arch, SearchSpace, get_space
from supernet.utils import DataError, atomic_write_bytes, atomic_write_json, git_hash


def project_version() -> str:
    try:
        return importlib.metadata.version("oneshot-nas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def arch_record(
    space: SearchSpace,
    arch: Arch,
    data: Mapping[str, Any] | None = None,
    /,
    **fields: Any,
) -> dict[str, Any]:
    """The self-describing record of `arch`: `fields` (score, costs, budgets, ...) first, then
    `ops`, `op_indices`, `space`, `data`, `version` and `git`.

    Args:
        data: `name`, `input_shape` and `num_classes` of the data the costs are for.
    """
    record = dict(fields)
    record.setdefault("arch", space.to_str(arch))
    record.update(
        {
            "ops": [space.ops[o] for o in arch],
            "op_indices": list(arch),
            "space": {"name": space.name, "config": space.config()},
            "data": dict(data or {}),
            "version": project_version(),
            "git": git_hash(),
        }
    )
    return record


def write_arch_record(
    json_path: str | Path, record: Mapping[str, Any], yaml_path: str | Path | None = None
) -> None:
    """Writes the record as JSON (and YAML), each atomically."""
    atomic_write_json(json_path, record)
    if yaml_path is not None:
        plain = json.loads(json.dumps(record, default=str))  # lists, not tuples, for safe_dump
        atomic_write_bytes(yaml_path, yaml.safe_dump(plain, sort_keys=False).encode())


def read_arch_record(path: str | Path) -> dict[str, Any]:
    """A `best_arch.json`, with a string `arch`.

    Raises:
        DataError: a missing or unreadable file, one without a string `arch` field, or a `space`
            field that is not `{name, config}`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"arch file {path} does not exist (a best_arch.json of query.py)")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"arch file {path} is not JSON text ({err})") from None
    arch = record.get("arch") if isinstance(record, dict) else None
    if not isinstance(arch, str):
        found = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataError(
            f"arch file {path}: no string field 'arch' (found {found}); expected the "
            "best_arch.json that query.py exports"
        )
    space = record.get("space")
    if space is not None and not (
        isinstance(space, dict)
        and isinstance(space.get("name"), str)
        and isinstance(space.get("config"), dict)
    ):
        raise DataError(
            f"arch file {path}: field 'space' is {space!r}; expected {{name: ..., config: {{...}}}}"
        )
    return record


def record_space(record: Mapping[str, Any], source: str = "arch file") -> SearchSpace | None:
    """The space a record names (None for a file without one, of an earlier version)."""
    space = record.get("space")
    if space is None:
        return None
    try:
        return get_space(space["name"], **space["config"])
    except (TypeError, ValueError) as err:
        raise DataError(f"{source}: space {space!r} cannot be built ({err})") from None


def choose_space(
    recorded: SearchSpace | None,
    configured: SearchSpace,
    explicit: Sequence[str] = (),
    source: str = "arch file",
) -> SearchSpace:
    """The space to use: the recorded one when there is one, else the configured one.

    Args:
        explicit: the command line's overrides of the space (`space=...`, `space.C=...`); when
            there are some and they give another space than the recorded one, it is refused.

    Raises:
        DataError: an explicit space that conflicts with the recorded one, both named.
    """
    if recorded is None:
        return configured
    same = (recorded.name, recorded.config()) == (configured.name, configured.config())
    if explicit and not same:
        raise DataError(
            f"{source} records space {recorded.name} {recorded.config()}; the command line "
            f"({' '.join(explicit)}) gives space {configured.name} {configured.config()}. Drop "
            "the space override: the arch file's space is used"
        )
    return recorded


def space_node(space: SearchSpace) -> dict[str, Any]:
    """A config node that builds `space` by its registered name (`_target_` get_space)."""
    return {"_target_": "supernet.space.get_space", "name": space.name, **space.config()}


def space_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides among `overrides` that set the space (`space=chain`, `space.C=4`, ...)."""
    keys = [(o, o.lstrip("+~").split("=", 1)[0]) for o in overrides]
    return [o for o, k in keys if k == "space" or k.startswith("space.")]


def resolve_arch(
    value: str, configured: SearchSpace, overrides: Sequence[str] = ()
) -> tuple[str, SearchSpace, dict[str, Any] | None]:
    """An arch string, or a `best_arch.json`, as (arch string, its space, the file's record).

    Args:
        configured: the space of the config (used unless the file records one).
        overrides: the command line's overrides; a space override that conflicts with the file's
            space is refused (`choose_space`).

    Raises:
        DataError: a bad file, a conflicting space, or an arch the space cannot parse.
    """
    record, space = None, configured
    if value.endswith(".json"):
        record = read_arch_record(value)
        recorded = record_space(record, value)
        space = choose_space(recorded, configured, space_overrides(overrides), value)
        value = record["arch"]
    try:
        space.parse(value)
    except ValueError as err:
        raise DataError(f"arch={value!r}: {err}") from None
    return value, space, record
