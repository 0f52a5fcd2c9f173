"""Chip profiles shipped as TOML data, and the loader that validates them."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from neurodeploy.errors import ProfileError
from neurodeploy.hw_profiles.schema import Citation, Profile, load_profile_file, parse_profile

__all__ = ["Citation", "Profile", "available", "get", "parse_profile"]


def available() -> list[str]:
    """Names of the profiles shipped with neurodeploy."""
    folder = resources.files(__package__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def get(name_or_path: str | Path | Profile) -> Profile:
    """A shipped profile by name, or a user's profile file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    # a path must look like one: a bare name never picks up a file of that name in the current folder
    if text.endswith(".toml") or "/" in text or (os.sep != "/" and os.sep in text):
        return load_profile_file(Path(text))
    if text not in available():
        raise ProfileError(
            f"unknown profile {text!r}",
            "profile name",
            f"choose one of {', '.join(available())}, or pass the path of a .toml profile file",
        )
    resource = resources.files(__package__) / f"{text}.toml"
    return parse_profile(resource.read_text(encoding="utf-8"), f"{text}.toml")
