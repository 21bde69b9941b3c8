"""Where the local stack keeps its state: `.autopost/` in the project root (gitignored)."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    # editable install: services/devstack/paths.py -> repo root; otherwise the working directory
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def state_dir() -> Path:
    return project_root() / ".autopost"
