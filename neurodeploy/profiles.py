"""Chip profiles: ``get(name_or_path)`` and ``available()``; the data lives in ``neurodeploy.hw_profiles``."""

from neurodeploy.hw_profiles import Citation, Profile, available, get, parse_profile

__all__ = ["Citation", "Profile", "available", "get", "parse_profile"]
