"""Every scripted dialogue in this folder runs through the real actors and holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from troupe._dialogue import load_script, run_script

HERE = Path(__file__).parent
SCRIPTS = sorted(HERE.glob("*.toml"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
async def test_dialogue(script: Path, tmp_path: Path) -> None:
    outcome = await run_script(load_script(script), tmp_path / "replay.db")
    assert outcome.ok, "\n".join(["", *outcome.lines, "", *outcome.failures])


def test_there_are_enough_dialogues() -> None:
    assert len(SCRIPTS) >= 22


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "troupe", "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_replay_command_prints_the_transcript_and_exits_zero() -> None:
    done = _replay(str(HERE / "basic_turn.toml"))
    assert done.returncode == 0, done.stderr
    assert "Mira" in done.stdout
    assert "-- state --" in done.stdout


def test_replay_command_exits_one_on_a_failed_expectation(tmp_path: Path) -> None:
    script = tmp_path / "wrong.toml"
    script.write_text(
        (HERE / "basic_turn.toml").read_text()
        + '\n[[turn]]\nyou = "Again?"\nreply = "Yes."\nexpect.last = { text = "No." }\n'
    )
    done = _replay(str(script), "--db", str(tmp_path / "kept.db"))
    assert done.returncode == 1
    assert "want 'No.'" in done.stderr
    assert (tmp_path / "kept.db").exists()


def test_replay_command_exits_two_on_a_broken_script(tmp_path: Path) -> None:
    script = tmp_path / "broken.toml"
    script.write_text("this is = = not toml")
    done = _replay(str(script))
    assert done.returncode == 2
    assert "broken.toml" in done.stderr
