"""The built-in sweep files (``sweep presets``), read without importing the rest of the project."""

from __future__ import annotations

from importlib import resources

__all__ = ["presets", "preset_text"]


def presets() -> dict[str, str]:
    """Built-in preset name -> its first comment line (a description)."""
    out = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            first = entry.read_text(encoding="utf-8").splitlines()[0]
            out[entry.name[:-5]] = first.lstrip("# ").strip()
    return out


def preset_text(name: str) -> str:
    """The sweep file of preset ``name`` (one of :func:`presets`)."""
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
