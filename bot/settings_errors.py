"""Bad settings as one line each: which setting (``DOCBOT_NAME``), what it was given and what it takes.

:func:`load_settings` is what the edges (the CLI, ``python app.py``, the benchmarks) call instead of ``Settings()``;
they print :attr:`SettingsError.lines` and exit 2, never a traceback.
"""

from __future__ import annotations

import tomllib
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import IPvAnyNetwork, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from bot.config import Settings

_PREFIX = "DOCBOT_"
_BOUNDS = ((annotated_types.Ge, "≥"), (annotated_types.Gt, ">"), (annotated_types.Le, "≤"), (annotated_types.Lt, "<"))


class SettingsError(Exception):
    """One or more settings are not accepted; ``lines`` has one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``docbot.toml`` with ``overrides`` on top (None means not given)."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise SettingsError([problem_line(error) for error in exc.errors()]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"docbot.toml is not valid TOML ({exc}); fix that line or move the file away"]) from exc


def env_name(field: str) -> str:
    return _PREFIX + field.upper()


def problem_line(error: Any) -> str:
    """``DOCBOT_K: 0 is not accepted; it takes a whole number ≥ 1 and ≤ 100`` for one pydantic error."""
    given_as = str(error["loc"][0]) if error.get("loc") else ""
    field = field_of(given_as)
    info = Settings.model_fields.get(field)
    if info is None:
        return f"settings: {error.get('msg', 'not accepted')}"
    name = given_as if given_as.startswith(_PREFIX) else env_name(field)  # an alias names itself (an older name)
    given = "" if _is_secret(field, info) else f"{error.get('input')!r} is not accepted; "
    if error.get("type") == "value_error":  # a validator of ours: its message says what the setting takes
        return f"{name}: {given}it takes {str(error['msg']).removeprefix('Value error, ')}"
    return f"{name}: {given}it takes {accepts(info)}"


def field_of(given_as: str) -> str:
    """The field a name in an error stands for: the field itself, or the field one of whose aliases it is."""
    for field, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", ())
        if given_as == field or given_as in choices:
            return field
    return given_as


def accepts(info: FieldInfo) -> str:
    """What a field takes, in words: from its type and its bounds."""
    kind = _kind(info.annotation)
    bounds = [
        f"{sign} {bound}"
        for meta in info.metadata
        for cls, sign in _BOUNDS
        if isinstance(meta, cls)
        for bound in [getattr(meta, cls.__name__.lower())]
    ]
    return kind + (" " + " and ".join(bounds) if bounds else "")


def _kind(annotation: Any) -> str:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(annotation))
    if get_origin(annotation) is list:
        item = get_args(annotation)[0] if get_args(annotation) else str
        return "a comma-separated list" + ("" if item in (str, SecretStr) else f" of {_kind(item)}")
    if args and get_origin(annotation) is not None:  # X | None, Annotated[X, ...]
        return _kind(args[0])
    names = {
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        str: "text",
        SecretStr: "text",
        IPvAnyNetwork: "IP addresses or networks (10.0.0.5, 10.0.0.0/8)",
    }
    return names.get(annotation, "a path" if getattr(annotation, "__name__", "") == "Path" else "a valid value")


def _is_secret(field: str, info: FieldInfo) -> bool:
    """Never echo a password or key back (``users`` holds passwords too)."""
    return field == "users" or "SecretStr" in repr(info.annotation)
