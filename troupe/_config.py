"""One settings object for ``troupe serve``, from flags, the environment and defaults.

Flags win over ``TROUPE_*`` variables, which win over defaults. Nothing else
in the project reads the environment.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import platformdirs
from attrs import field, frozen

from actors import EngineSettings
from llm import BACKENDS, JSON_MODES, ModelSettings


@frozen
class Config:
    """Everything ``troupe serve`` needs."""

    host: str
    port: int
    data_dir: Path
    token: str = field(repr=False)
    allow_origins: tuple[str, ...]
    engine: EngineSettings
    max_clients: int = 512
    """WebSocket clients served at once; past it an upgrade gets HTTP 503."""
    cluster: ClusterConfig | None = None
    """Where the cluster's database and bus are; None: one process on the embedded store."""


@frozen
class ClusterConfig:
    """``--store`` and ``--bus``: this process is one node of a cluster (docs/scale-out.md)."""

    store: str = field(repr=False)
    bus: str = field(repr=False)
    lease_ttl: float = 10.0


class ConfigError(Exception):
    """A flag or variable has a value we cannot use."""


def _pick(flag: object, env: Mapping[str, str], name: str, default: object = None) -> object:
    if flag is not None:
        return flag
    value = env.get(name)
    return value if value not in (None, "") else default


def model_settings(
    args: argparse.Namespace, env: Mapping[str, str], data_dir: Path
) -> tuple[ModelSettings, ModelSettings | None]:
    """The narrative and classifier model settings (classifier ``None``: share narrative)."""
    backend = str(_pick(getattr(args, "backend", None), env, "TROUPE_BACKEND", "local"))
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    base_url = _pick(getattr(args, "base_url", None), env, "TROUPE_BASE_URL")
    model = _pick(getattr(args, "model", None), env, "TROUPE_MODEL")
    classifier_model = _pick(
        getattr(args, "classifier_model", None), env, "TROUPE_CLASSIFIER_MODEL"
    )
    script = _pick(getattr(args, "script", None), env, "TROUPE_SCRIPT")
    raw_cap = _pick(getattr(args, "max_connections", None), env, "TROUPE_MAX_CONNECTIONS", 4)
    try:
        cap = int(str(raw_cap))
    except ValueError:
        raise ConfigError(f"max connections must be a whole number, not {raw_cap!r}") from None
    if cap < 1:
        raise ConfigError("max connections must be at least 1")
    json_mode = str(_pick(getattr(args, "json_mode", None), env, "TROUPE_JSON_MODE", "auto"))
    if json_mode not in JSON_MODES:
        raise ConfigError(f"json mode must be one of {', '.join(JSON_MODES)}, not {json_mode!r}")
    key = env.get("TROUPE_API_KEY") or env.get("OPENAI_API_KEY") or None
    if backend == "openai" and not base_url:
        raise ConfigError("--backend openai needs --base-url (or TROUPE_BASE_URL)")
    if backend == "scripted" and not script:
        raise ConfigError("--backend scripted needs --script (or TROUPE_SCRIPT)")
    narrative = ModelSettings(
        backend=backend,
        base_url=str(base_url) if base_url else None,
        model=str(model) if model else None,
        api_key=key,
        json_mode=json_mode,
        max_connections=cap,
        script_path=str(script) if script else None,
        cache_dir=str(data_dir / "cache"),
    )
    classifier = None
    if classifier_model and classifier_model != model:
        classifier = ModelSettings(
            backend=backend,
            base_url=narrative.base_url,
            model=str(classifier_model),
            api_key=key,
            json_mode=narrative.json_mode,
            max_connections=cap,
            script_path=narrative.script_path,
            cache_dir=narrative.cache_dir,
        )
    return narrative, classifier


def load_token(data_dir: Path, given: str | None) -> str:
    """The access token: the given one, or one kept in the data folder across restarts."""
    if given:
        return given
    path = data_dir / "token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
        path.unlink()
    token = secrets.token_urlsafe(24)
    # Private from the first byte: made with mode 0600, never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def data_folder(flag: str | None, env: Mapping[str, str]) -> Path:
    """The data folder (made if missing): ``--data``, else ``TROUPE_DATA``, else a per-user one."""
    data = _pick(flag, env, "TROUPE_DATA") or platformdirs.user_data_dir("troupe")
    data_dir = Path(str(data)).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def cluster_config(args: argparse.Namespace, env: Mapping[str, str]) -> ClusterConfig | None:
    """``--store`` and ``--bus`` (both or neither), checked for their schemes."""
    store = _pick(getattr(args, "store", None), env, "TROUPE_STORE")
    bus = _pick(getattr(args, "bus", None), env, "TROUPE_BUS")
    if store is None and bus is None:
        return None
    if store is None or bus is None:
        raise ConfigError("--store and --bus go together: a cluster needs both")
    store, bus = str(store), str(bus)
    if not store.startswith(("postgresql://", "postgres://")):
        raise ConfigError("--store must be a postgresql:// URL")
    if not bus.startswith(("redis://", "rediss://")):
        raise ConfigError("--bus must be a redis:// URL")
    raw_ttl = _pick(getattr(args, "lease_ttl", None), env, "TROUPE_LEASE_TTL", 10.0)
    try:
        ttl = float(str(raw_ttl))
    except ValueError:
        raise ConfigError(f"the lease TTL must be a number of seconds, not {raw_ttl!r}") from None
    if not 0.5 <= ttl <= 600:
        raise ConfigError(f"the lease TTL must be between 0.5 and 600 seconds, not {ttl:g}")
    return ClusterConfig(store, bus, ttl)


def build_config(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """Build the serve configuration; raises :class:`ConfigError` on bad values."""
    data_dir = data_folder(args.data, env)
    raw_port = _pick(args.port, env, "TROUPE_PORT", 8765)
    try:
        port = int(str(raw_port))
    except ValueError:
        raise ConfigError(f"port must be a number, not {raw_port!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, not {port}")
    origins = list(args.allow_origin or [])
    origins += [o.strip() for o in env.get("TROUPE_ALLOW_ORIGIN", "").split(",") if o.strip()]
    raw_clients = _pick(getattr(args, "max_clients", None), env, "TROUPE_MAX_CLIENTS", 512)
    try:
        max_clients = int(str(raw_clients))
    except ValueError:
        raise ConfigError(f"max clients must be a whole number, not {raw_clients!r}") from None
    if max_clients < 1:
        raise ConfigError("max clients must be at least 1")
    raw_beats = _pick(
        getattr(args, "max_beats_per_turn", None), env, "TROUPE_MAX_BEATS_PER_TURN", 3
    )
    try:
        max_beats = int(str(raw_beats))
    except ValueError:
        raise ConfigError(
            f"max beats per turn must be a whole number, not {raw_beats!r}"
        ) from None
    if not 1 <= max_beats <= 8:
        raise ConfigError(f"max beats per turn must be between 1 and 8, not {max_beats}")
    cluster = cluster_config(args, env)
    narrative, classifier = model_settings(args, env, data_dir)
    token = load_token(data_dir, str(_pick(args.token, env, "TROUPE_TOKEN", "")) or None)
    return Config(
        host=str(_pick(args.host, env, "TROUPE_HOST", "127.0.0.1")),
        port=port,
        data_dir=data_dir,
        token=token,
        allow_origins=tuple(origins),
        max_clients=max_clients,
        cluster=cluster,
        engine=EngineSettings(
            db_path=data_dir / "troupe.db",
            data_dir=data_dir,
            narrative=narrative,
            classifier=classifier,
            max_beats_per_turn=max_beats,
        ),
    )
