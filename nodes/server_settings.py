"""Run settings on the LangGraph server: the operator's, not the client's.

A client of the server may choose only what cannot reach outside the server's intent: a
named model profile the operator configured, and judging options (guidelines, packshots,
scale, review threshold and mode). Endpoints, API key variable names, the store path and
the folder local packshots may come from are the operator's, read once from the server's
configuration:

- `RAER_SERVER_CONFIG`: a JSON file
  `{"db_path": "...", "images_root": "...", "default_profile": "NAME",
    "profiles": {"NAME": {"base_url": "...", "model": "...", "api_key_env": "..."}},
    "settings": {"max_concurrency": 16}}`
  where a profile and `settings` may set any run setting (`Context` field); optional
  `allowed_hosts`, `allowed_origins` (lists), `allow_state_edits` (true/false) and
  `max_body_mb` (see `OperatorConfig`);
- without it, `RAER_DB` (default `raer.db`), `RAER_BASE_URL`, `RAER_MODEL`,
  `RAER_API_KEY_ENV` and `RAER_IMAGES_ROOT` give one profile, "default";
  `RAER_ALLOWED_HOSTS`, `RAER_ALLOWED_ORIGINS` (comma-separated) and
  `RAER_ALLOW_STATE_EDITS=1` the rest.

Relative paths in the configuration resolve against the configuration file's folder (or,
from environment variables, the server's working directory at start). Without an images
root, the server reads no local files as packshots.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError

from raer.nodes.context import Context

CLIENT_FIELDS = ("profile", "guideline_mode", "describe_images", "scale", "review_below",
                 "review_mode")


OPERATOR_FIELDS = frozenset(f.name for f in dataclasses.fields(Context)) - set(CLIENT_FIELDS)


class ForbiddenSetting(ValueError):
    """A client asked for a setting only the operator may choose."""


def _client_settings_class() -> type:
    """`ServerSettings`, made from Context's own fields (type, default, description), so a
    client's choice means what the same setting means everywhere; it once repeated five of
    them by hand. `profile` is the server's own: a model profile the operator configured."""
    hints = get_type_hints(Context)
    own = {f.name: f for f in dataclasses.fields(Context)}
    fields = [("profile", str, field(default="", metadata={
        "description": "A model profile the server's operator configured; empty: the "
                       "default."}))]
    fields += [(name, hints[name], field(default=own[name].default, metadata={
        "description": own[name].metadata["description"]})) for name in CLIENT_FIELDS[1:]]
    made = dataclasses.make_dataclass("ServerSettings", fields, frozen=True)
    made.__module__ = __name__
    made.__doc__ = "What a client of the LangGraph server may set for a run."
    return made


ServerSettings = _client_settings_class()


_CLIENT_ADAPTER = TypeAdapter(ServerSettings)


MAX_BODY_BYTES = 32 * 1024 * 1024  # a query's products with data: URL packshots fit


@dataclass(frozen=True)
class OperatorConfig:
    db_path: str
    images_root: str
    default_profile: str
    profiles: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    allowed_hosts: tuple[str, ...] = ()
    """Host names the server answers besides loopback and its listening address."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins (scheme://host[:port]) allowed to call the server, e.g. Studio's."""
    allow_state_edits: bool = False
    """Let clients write threads' state (state updates, `command.update`/`goto`, thread
    creation with `supersteps`): Studio's edit-and-rerun, for a trusted single-user server.
    Off, those requests are refused: a client could otherwise forge judgments, run ids and
    human labels that `record` writes into the operator's store."""
    max_body_bytes: int = MAX_BODY_BYTES


CONFIG_KEYS = frozenset({"db_path", "images_root", "default_profile", "profiles", "settings",
                         "allowed_hosts", "allowed_origins", "allow_state_edits",
                         "max_body_mb"})


def _resolve(path: str, root: Path) -> str:
    return str((root / path).resolve()) if path and not Path(path).is_absolute() else path


def load_operator_config(environ: dict[str, str] | None = None) -> OperatorConfig:
    """The server's configuration (see the module docstring); errors name the file."""
    env = os.environ if environ is None else environ
    known = {f.name for f in dataclasses.fields(Context)}
    path = env.get("RAER_SERVER_CONFIG", "")
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"RAER_SERVER_CONFIG {path}: {exc}") from exc
        root = Path(path).resolve().parent
        profiles = data.get("profiles") or {"default": {}}
        for name, profile in [*profiles.items(), ("settings", data.get("settings") or {})]:
            unknown = set(profile) - known
            if unknown:
                raise ValueError(f"RAER_SERVER_CONFIG {path}: {name}: unknown run settings "
                                 f"{sorted(unknown)}")
        unknown = set(data) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"RAER_SERVER_CONFIG {path}: unknown keys {sorted(unknown)}; "
                             f"known: {sorted(CONFIG_KEYS)}")
        return OperatorConfig(
            db_path=_resolve(data.get("db_path") or "raer.db", root),
            images_root=_resolve(data.get("images_root") or "", root),
            default_profile=data.get("default_profile") or next(iter(profiles)),
            profiles=profiles, settings=data.get("settings") or {},
            allowed_hosts=_names(data.get("allowed_hosts"), path, "allowed_hosts"),
            allowed_origins=_names(data.get("allowed_origins"), path, "allowed_origins"),
            allow_state_edits=data.get("allow_state_edits") is True,
            max_body_bytes=int(float(data.get("max_body_mb") or MAX_BODY_BYTES / 2**20)
                               * 2**20))
    root = Path.cwd()
    profile = {k: v for k, v in (("base_url", env.get("RAER_BASE_URL", "")),
                                 ("model", env.get("RAER_MODEL", "")),
                                 ("api_key_env", env.get("RAER_API_KEY_ENV", ""))) if v}
    return OperatorConfig(db_path=_resolve(env.get("RAER_DB", "raer.db"), root),
                          images_root=_resolve(env.get("RAER_IMAGES_ROOT", ""), root),
                          default_profile="default", profiles={"default": profile},
                          settings={},
                          allowed_hosts=_split(env.get("RAER_ALLOWED_HOSTS", "")),
                          allowed_origins=_split(env.get("RAER_ALLOWED_ORIGINS", "")),
                          allow_state_edits=env.get("RAER_ALLOW_STATE_EDITS", "") == "1")


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _names(value: Any, path: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"RAER_SERVER_CONFIG {path}: {name} must be a list of strings")
    return tuple(value)


@lru_cache(maxsize=1)
def operator_config() -> OperatorConfig:
    """Read once per server process, at the first run (never at import)."""
    return load_operator_config()


def check_client_settings(value: Any) -> None:
    """Reject, before any call, settings a client may not choose or that do not exist."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ForbiddenSetting("context must be a JSON object")
    forbidden = sorted(set(value) & OPERATOR_FIELDS)
    unknown = sorted(set(value) - set(CLIENT_FIELDS) - OPERATOR_FIELDS)
    problems = []
    if forbidden:
        problems.append(f"set by the server's operator, not by a client: {forbidden}")
    if unknown:
        problems.append(f"unknown settings: {unknown}")
    profile = value.get("profile")
    if profile and profile not in operator_config().profiles:
        problems.append(f"unknown profile {profile!r}; the operator allows: "
                        f"{sorted(operator_config().profiles)}")
    if problems:
        raise ForbiddenSetting("; ".join(problems) + f". A client may set: {list(CLIENT_FIELDS)}")


def client_settings(value: Any) -> ServerSettings:
    """A client's choices, checked as they would be at the door: known fields only, each of
    its type and range, a profile the operator configured. Used for the choices a thread's
    state carries, which a client can write (a state update, a resume `command`)."""
    if isinstance(value, ServerSettings):
        value = dataclasses.asdict(value)
    check_client_settings(value)
    try:
        checked = _CLIENT_ADAPTER.validate_python(value or {}, strict=False)
    except ValidationError as exc:
        raise ForbiddenSetting(f"client settings refused: {exc.errors()[0]['loc']}: "
                               f"{exc.errors()[0]['msg']}") from exc
    if not 0.0 <= checked.review_below <= 1.0:
        raise ForbiddenSetting("review_below must lie between 0 and 1")
    return checked


@lru_cache(maxsize=256)
def server_context(client: ServerSettings) -> Context:
    """The full run settings for a client's choice: the operator's endpoints, store and
    images root, the chosen profile, the client's judging options."""
    config = operator_config()
    name = client.profile or config.default_profile
    if name not in config.profiles:
        raise ForbiddenSetting(f"unknown profile {name!r}; the operator allows: "
                               f"{sorted(config.profiles)}")
    chosen = {k: getattr(client, k) for k in CLIENT_FIELDS if k != "profile"}
    from raer.nodes.settings import for_server  # the one place a Context is built

    return for_server(config.settings, config.profiles[name], chosen, config.db_path,
                      config.images_root)
