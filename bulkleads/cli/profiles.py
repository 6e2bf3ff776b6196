"""Profiles: the settings of a portal a team runs every night, kept in one TOML file.

``--profile NAME`` reads the table ``[profile.NAME]`` of ``config.toml`` in the user's config
directory (``platformdirs``: ``~/.config/bulkleads`` on Linux), or of ``$BULKLEADS_CONFIG``.
A flag given on the command line wins over the profile. A profile never holds the token itself
(config files get copied, committed and mailed): only ``token_file``, a path, or ``token_env``,
the name of an environment variable that holds it.

    [profile.acme]
    base_url = "https://api.hubapi.com"
    api = "crm-v3"
    object = "contacts"
    rate = 190
    rate_window = 10
    token_env = "ACME_HUBSPOT_TOKEN"
    map = { "Lead ID" = "id", "Close date" = "closedate" }
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final, Literal

import platformdirs

from bulkleads.errors import UsageError

CONFIG_VAR: Final = "BULKLEADS_CONFIG"
_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "api": ("leads-v1", "crm-v3"),
    "auth": ("query", "bearer"),
    "api_version": ("2026-09", "v3"),
    "report_dialect": ("excel", "csv", "tsv", "jsonl"),
}


# The same bounds as the flags (--rate, --rate-window, --concurrency): (lowest, highest).
_RANGES: Final[dict[str, tuple[float, float]]] = {
    "rate": (0.001, 1e9),
    "rate_window": (0.001, 86_400.0),
    "concurrency": (1, 64),
}

_KINDS: Final[dict[str, tuple[type, ...]]] = {
    "rate": (int, float),
    "rate_window": (int, float),
    "concurrency": (int,),
    "map": (dict,),
    "custom_fields": (list,),
    "date_formats": (list,),
}


@dataclass(frozen=True)
class Profile:
    """One ``[profile.NAME]`` table; None (or empty) where it says nothing."""

    base_url: str | None = None
    api: Literal["leads-v1", "crm-v3"] | None = None
    object: str | None = None  # a standard object, or a custom one's name or type id
    auth: Literal["query", "bearer"] | None = None
    api_version: Literal["2026-09", "v3"] | None = None
    report_dialect: Literal["excel", "csv", "tsv", "jsonl"] | None = None
    rate: float | None = None
    rate_window: float | None = None
    concurrency: int | None = None
    token_file: str | None = None
    token_env: str | None = None
    notify: str | None = None  # a URL the summary is posted to when a run ends
    map: dict[str, str] = field(default_factory=dict)
    custom_fields: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ()


def config_path() -> Path:
    """``$BULKLEADS_CONFIG``, else ``config.toml`` in the user's config directory."""
    given = os.environ.get(CONFIG_VAR)
    return Path(given) if given else platformdirs.user_config_path("bulkleads") / "config.toml"


def load_profile(name: str, path: Path | None = None) -> Profile:
    """The profile's settings, checked: known keys of the right types, and no token."""
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"--profile {name}: cannot read {path} ({exc.strerror}); create it with a "
            f"[profile.{name}] table, or point ${CONFIG_VAR} at yours"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"--profile {name}: {path} is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--profile {name}: {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"--profile {name}: {path} nests tables too deeply to read") from None
    profiles = data.get("profile")
    table = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(table, dict):
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else "none"
        raise UsageError(f"no profile {name!r} in {path} (profiles there: {known})")
    where = f"profile {name!r} in {path}"
    if "token" in table:
        raise UsageError(
            f"{where} holds a token: a profile may name a token_file or a token_env (an "
            "environment variable), never the token itself; remove it, and revoke that token "
            "if the file was shared"
        )
    known_keys = {f.name for f in fields(Profile)}
    for key, value in table.items():
        if key not in known_keys:
            raise UsageError(
                f"{where}: unknown key {key!r}; known: {', '.join(sorted(known_keys))}"
            )
        if key in _CHOICES and value not in _CHOICES[key]:
            raise UsageError(f"{where}: {key} takes one of {', '.join(_CHOICES[key])}")
        kinds = _KINDS.get(key, (str,))
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise UsageError(f"{where}: {key} takes {' or '.join(k.__name__ for k in kinds)}")
        if key in _RANGES and isinstance(value, int | float):
            low, high = _RANGES[key]
            if not (low <= value <= high):  # nan fails every comparison too
                raise UsageError(f"{where}: {key} is {value}; it takes {low:g} to {high:g}")
    try:
        return Profile(
            **{k: v for k, v in table.items() if k not in ("map", "custom_fields", "date_formats")},
            map={str(k): str(v) for k, v in dict(table.get("map", {})).items()},
            custom_fields=tuple(str(v) for v in table.get("custom_fields", ())),
            date_formats=tuple(str(v) for v in table.get("date_formats", ())),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: a value has the wrong type ({exc})") from None
