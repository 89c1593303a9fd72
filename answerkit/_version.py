"""The installed distribution's version (``answerkit.__version__``, ``answerkit --version``,
the REST client's User-Agent): read from the package metadata, so it is never out of step
with ``pyproject.toml``."""

from __future__ import annotations

from importlib import metadata


def installed_version() -> str:
    try:
        return metadata.version("answerkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"
