"""Where r1chat keeps its files (platformdirs), overridable for tests and portable setups.

`R1CHAT_HOME=/some/dir` puts config, data, models and logs under that one folder.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "r1chat"


def _home() -> Path | None:
    home = os.environ.get("R1CHAT_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    if home := _home():
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    if home := _home():
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def log_dir() -> Path:
    if home := _home():
        return home / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP, appauthor=False))


def models_dir() -> Path:
    """Downloaded checkpoints; `R1CHAT_MODELS` moves them (e.g. to a bigger disk)."""
    if custom := os.environ.get("R1CHAT_MODELS"):
        return Path(custom).expanduser()
    return data_dir() / "models"


def config_file() -> Path:
    return config_dir() / "config.toml"


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def evals_db() -> Path:
    """`r1chat eval`'s runs and graded samples."""
    return data_dir() / "evals.sqlite3"


def llama_log_file() -> Path:
    return log_dir() / "llama.log"
