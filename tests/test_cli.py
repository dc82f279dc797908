"""The ``dicomhub`` command line: help, and refusals before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dicomhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicomhub", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_commands() -> None:
    result = dicomhub("--help")

    assert result.returncode == 0
    for command in ("serve", "upload"):
        assert command in result.stdout


def test_a_bad_log_level_is_a_one_line_error() -> None:
    result = dicomhub("serve", "--log-level", "bogus", "--port", "1")

    assert result.returncode == 2
    assert "--log-level 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_is_printed() -> None:
    result = dicomhub("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dicomhub ")


def test_serve_help_offers_workers() -> None:
    result = dicomhub("serve", "--help")

    assert result.returncode == 0
    assert "--workers" in result.stdout


def test_a_bad_workers_value_is_one_error_before_any_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = dicomhub(
        "serve", "--workers", "none", "--port", "1", "--data-dir", str(data_dir)
    )

    assert result.returncode == 2
    assert result.stderr.count("invalid setting: server.workers = 'none'") == 1
    assert 'must be a positive integer, or "auto"' in result.stderr
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()
