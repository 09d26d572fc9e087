"""``troupe serve`` settings: flags over TROUPE_* variables over defaults."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from troupe import _config
from troupe.__main__ import build_parser, main
from troupe._config import ConfigError, build_config


def config(argv: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return build_config(build_parser().parse_args(["serve", *argv]), env)


def test_defaults_and_a_token_kept_across_restarts(tmp_path: Path) -> None:
    first = config(["--data", str(tmp_path)], {})
    assert (first.host, first.port) == ("127.0.0.1", 8765)
    assert first.engine.narrative.backend == "local"
    assert first.engine.classifier is None
    assert config(["--data", str(tmp_path)], {}).token == first.token
    assert first.token not in repr(first)


def test_environment_and_flags(tmp_path: Path) -> None:
    env = {
        "TROUPE_DATA": str(tmp_path),
        "TROUPE_PORT": "9000",
        "TROUPE_BACKEND": "openai",
        "TROUPE_BASE_URL": "http://127.0.0.1:8000/v1",
        "TROUPE_MODEL": "big",
        "TROUPE_CLASSIFIER_MODEL": "small",
        "TROUPE_MAX_CONNECTIONS": "2",
        "TROUPE_ALLOW_ORIGIN": "http://a.test, http://b.test",
        "TROUPE_TOKEN": "from-env",
        "OPENAI_API_KEY": "sk-1",
    }
    cfg = config(["--port", "9100", "--allow-origin", "http://c.test"], env)
    assert cfg.port == 9100 and cfg.token == "from-env"
    assert cfg.allow_origins == ("http://c.test", "http://a.test", "http://b.test")
    narrative, classifier = cfg.engine.narrative, cfg.engine.classifier
    assert (narrative.backend, narrative.model, narrative.max_connections) == ("openai", "big", 2)
    assert narrative.api_key == "sk-1" and "sk-1" not in repr(narrative)
    assert classifier is not None and classifier.model == "small"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--backend", "openai"], "needs --base-url"),
        (["--backend", "scripted"], "needs --script"),
        (["--port", "99999"], "between 0 and 65535"),
        (["--max-connections", "0"], "at least 1"),
        (["--json-mode", "grammar"], "json mode must be one of auto, schema, object, none"),
        (["--max-beats-per-turn", "0"], "between 1 and 8"),
        (["--max-beats-per-turn", "9"], "between 1 and 8"),
        (["--store", "postgresql://db/troupe"], "--store and --bus go together"),
        (["--bus", "redis://cache"], "--store and --bus go together"),
        (["--store", "sqlite:///x.db", "--bus", "redis://cache"], "postgresql:// URL"),
        (["--store", "postgresql://db/t", "--bus", "http://cache"], "redis:// URL"),
        (["--store", "postgresql://db/t", "--bus", "redis://c", "--lease-ttl", "0.1"], "0.5"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path: Path, argv: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config(["--data", str(tmp_path), *argv], {})


def test_a_cluster_node_from_flags_or_variables(tmp_path: Path) -> None:
    assert config(["--data", str(tmp_path)], {}).cluster is None
    env = {"TROUPE_STORE": "postgresql://db/troupe", "TROUPE_BUS": "redis://cache:6379/0"}
    from_env = config(["--data", str(tmp_path)], {**env, "TROUPE_LEASE_TTL": "6"}).cluster
    assert from_env is not None
    assert (from_env.store, from_env.bus, from_env.lease_ttl) == (
        "postgresql://db/troupe",
        "redis://cache:6379/0",
        6.0,
    )
    flags = ["--data", str(tmp_path), "--store", "postgresql://other/t", "--bus", "redis://c"]
    from_flags = config(flags, env).cluster
    assert from_flags is not None and from_flags.store == "postgresql://other/t"
    assert "other" not in repr(from_flags)  # the URLs may carry passwords


def test_serve_exits_2_on_a_bad_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--data", str(tmp_path), "--backend", "openai"], {}) == 2
    assert "needs --base-url" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"], {})
    assert capsys.readouterr().out.startswith("troupe ")


def serve_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["serve", "--help"], {})
    return capsys.readouterr().out


def option_blocks(text: str) -> dict[str, str]:
    """Each option of a help text with the lines of its description."""
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        found = re.match(r"^  (-\w, )?(--[a-z][\w-]*)", line)
        if found:
            current = found.group(2)
            blocks[current] = line
        elif current is not None and line.startswith("   "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


def test_every_serve_flag_names_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = option_blocks(serve_help(capsys))
    blocks.pop("--help")
    assert {"--host", "--port", "--backend", "--max-connections"} <= blocks.keys()
    for flag, block in blocks.items():
        variable = "TROUPE_" + flag.removeprefix("--").replace("-", "_").upper()
        assert variable in block, f"`troupe serve --help` does not say {flag} is {variable}"


def test_serve_help_lists_every_variable_the_settings_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = serve_help(capsys)
    read = set(re.findall(r"\"((?:TROUPE|OPENAI)_[A-Z_]+)\"", inspect.getsource(_config)))
    assert {"TROUPE_PORT", "TROUPE_API_KEY", "OPENAI_API_KEY"} <= read
    missing = sorted(v for v in read if v not in text)
    assert not missing, f"`troupe serve --help` does not list {missing}"


def test_each_variable_in_the_help_is_honoured(tmp_path: Path) -> None:
    # The variables the first test above does not set: the help must not promise in vain.
    cfg = config(
        [],
        {
            "TROUPE_DATA": str(tmp_path),
            "TROUPE_HOST": "127.0.0.2",
            "TROUPE_BACKEND": "scripted",
            "TROUPE_SCRIPT": str(tmp_path / "replies.toml"),
            "TROUPE_API_KEY": "sk-2",
            "OPENAI_API_KEY": "sk-1",
            "TROUPE_MAX_BEATS_PER_TURN": "5",
        },
    )
    assert cfg.host == "127.0.0.2" and cfg.data_dir == tmp_path
    assert cfg.engine.max_beats_per_turn == 5
    assert (
        config(
            ["--data", str(tmp_path), "--max-beats-per-turn", "2"], {}
        ).engine.max_beats_per_turn
        == 2
    )
    assert cfg.engine.narrative.script_path == str(tmp_path / "replies.toml")
    assert cfg.engine.narrative.api_key == "sk-2"


def test_the_json_mode_from_flag_or_variable_reaches_both_roles(tmp_path: Path) -> None:
    env = {
        "TROUPE_DATA": str(tmp_path),
        "TROUPE_BACKEND": "openai",
        "TROUPE_BASE_URL": "http://127.0.0.1:8000/v1",
        "TROUPE_CLASSIFIER_MODEL": "small",
    }
    assert config([], env).engine.narrative.json_mode == "auto"
    cfg = config([], {**env, "TROUPE_JSON_MODE": "object"})
    assert cfg.engine.classifier is not None
    assert cfg.engine.narrative.json_mode == cfg.engine.classifier.json_mode == "object"
    flagged = config(["--json-mode", "none"], {**env, "TROUPE_JSON_MODE": "object"})
    assert flagged.engine.narrative.json_mode == "none"  # the flag wins
