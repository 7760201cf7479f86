"""Command-line flags generated from a config dataclass: the dataclass is the single schema.

Each field becomes ``--field-name`` (``--field_name`` too), typed from its annotation, with the
help and choices of its ``metadata`` (HfArgumentParser's convention): booleans are switches
(``--resume``; ``--no-progress`` for a field that defaults to True), ``tuple[str, ...]`` fields take
a comma-separated list, ``dict`` fields a JSON object, and ``none`` means ``None`` for an optional
string. ``--config FILE`` reads a JSON object of fields; flags given on the command line win.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["add_dataclass_arguments", "config_from_args", "to_flags"]


def _kind(annotation: Any) -> tuple[str, bool]:
    """('bool'|'int'|'float'|'str'|'tuple'|'dict', optional) of a field annotation."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next((a for a in args if a is not type(None)), str)
    origin = typing.get_origin(annotation) or annotation
    for kind, types_ in (("bool", (bool,)), ("int", (int,)), ("float", (float,)), ("tuple", (tuple, list)),
                         ("dict", (dict,))):
        if origin in types_:
            return kind, optional
    return "str", optional


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _spellings(name: str) -> list[str]:
    """``--batch-size`` and ``--batch_size`` (Accelerate's and HfArgumentParser's spelling)."""
    return [_flag(name), f"--{name}"] if "_" in name else [_flag(name)]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of ``cls`` (none is required here: :func:`config_from_args` checks)."""
    hints = typing.get_type_hints(cls)
    parser.add_argument("--config", metavar="FILE", help=f"JSON object of {cls.__name__} fields; flags win")
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        kind, _ = _kind(hints[field.name])
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else None
        if kind == "bool":
            switch = f"no_{field.name}" if default else field.name
            parser.add_argument(*_spellings(switch), dest=field.name, default=argparse.SUPPRESS,
                                action="store_false" if default else "store_true",
                                help=f"do not {help_text}" if default else help_text)
            continue
        suffix = f" (default: {default})" if default not in (None, (), "") else ""
        choices = field.metadata.get("choices")
        parser.add_argument(*_spellings(field.name), dest=field.name, default=argparse.SUPPRESS,
                            choices=choices, type={"int": int, "float": float}.get(kind, str),
                            help=help_text + suffix, metavar=None if choices else field.name.upper())


def _convert(value: Any, kind: str, optional: bool, name: str) -> Any:
    if kind == "tuple":
        items = value.split(",") if isinstance(value, str) else list(value or ())
        return tuple(s.strip() for s in items if str(s).strip())
    if kind == "dict" and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as err:
            raise ValueError(f"{_flag(name)}: not a JSON object ({err})") from err
        if not isinstance(parsed, dict):
            raise ValueError(f"{_flag(name)}: expected a JSON object, got {type(parsed).__name__}")
        return parsed
    if optional and kind == "str" and isinstance(value, str) and value.strip().lower() in ("none", ""):
        return None
    return value


def config_from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """``cls`` from ``--config FILE`` (if given), then the flags given, then ``fixed``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"--config {path}: cannot read a JSON object ({err})") from err
        unknown = sorted(set(loaded) - names) if isinstance(loaded, dict) else None
        if unknown is None or unknown:
            raise ValueError(f"--config {path}: " + ("not a JSON object" if unknown is None else
                                                     f"unknown {cls.__name__} fields {unknown}"))
        values.update(loaded)
    values.update({k: v for k, v in vars(args).items() if k in names})
    values.update(fixed)
    converted = {k: _convert(v, *_kind(hints[k]), k) for k, v in values.items()}
    missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and f.name not in converted]
    if missing:
        raise ValueError(" and ".join(_flag(m) for m in missing) + (" is" if len(missing) == 1 else " are")
                         + " required")
    return cls(**converted)


def to_flags(config: Any, names: tuple[str, ...]) -> list[str]:
    """The flags that set ``names`` of ``config`` (e.g. a readable launcher command line)."""
    hints = typing.get_type_hints(type(config))
    out: list[str] = []
    for name in names:
        value = getattr(config, name)
        kind, _ = _kind(hints[name])
        if kind == "bool":
            out += [_flag(name)] if value else []
        elif value not in (None, (), ""):
            out += [_flag(name), ",".join(map(str, value)) if kind == "tuple" else str(value)]
    return out
