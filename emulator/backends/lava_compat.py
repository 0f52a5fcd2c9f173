"""Make Lava 0.10.0 importable on Python 3.11+ without leaving a patch behind.

Lava's ``lava.magma.compiler.var_model`` declares dataclass fields whose default is an instance of
another (unhashable) dataclass, e.g. ``x: ByteEncoder = ByteEncoder()``. Python 3.11 rejects that
("mutable default ... use default_factory"), so every ``import lava.magma...`` fails. The fix here is
scoped as tightly as possible: only while that one module is first imported, and only for classes
defined in it, ``dataclasses._get_field`` turns such a default into ``default_factory`` (a deep copy
of the original instance). The original function is put back before returning, so ``dataclasses``
is left exactly as it was. Nothing runs at ``import neurodeploy`` time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import importlib.util
import sys
import threading
from collections.abc import Iterator
from typing import Any

from neurodeploy.errors import NeurodeployError

VAR_MODEL = "lava.magma.compiler.var_model"
# Calls multiprocessing.set_start_method("fork") at import, which raises once anything has fixed the
# start method (numba's parallel kernels query it, which fixes it to the default, "fork" on Linux).
MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"
INSTALL_HINT = (
    "run `make venv`, or install Lava's pinned needs first "
    "(pip install 'numpy>=1.24.4,<2' 'scipy>=1.10.1,<1.17' 'networkx<=2.8.7' 'asteval>=0.9.31,<0.10' "
    "'scikit-learn>=1.5,<2', the `lava` extra of pyproject.toml) and then "
    "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0`"
)

_lock = threading.Lock()


def _lava_installed() -> bool:
    try:
        return importlib.util.find_spec("lava") is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _unhashable_defaults_as_factories(module: str) -> Iterator[None]:
    """While active, dataclasses defined in ``module`` get ``default_factory`` for unhashable defaults."""
    original = dataclasses._get_field  # type: ignore[attr-defined]

    def _get_field(cls: type, a_name: str, a_type: Any, *args: Any, **kwargs: Any) -> Any:
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if (
            getattr(cls, "__module__", None) == module
            and default is not dataclasses.MISSING
            and not isinstance(default, dataclasses.Field)
            and dataclasses.is_dataclass(default)
            and type(default).__hash__ is None
        ):
            setattr(cls, a_name, dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d)))
        return original(cls, a_name, a_type, *args, **kwargs)

    dataclasses._get_field = _get_field  # type: ignore[attr-defined]
    try:
        yield
    finally:
        dataclasses._get_field = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def _fork_already_set_tolerated() -> Iterator[None]:
    """While active, ``set_start_method("fork")`` is accepted when the start method already is "fork"."""
    import multiprocessing

    original = multiprocessing.set_start_method

    def set_start_method(method: str | None, force: bool = False) -> None:
        if method == "fork" and multiprocessing.get_start_method(allow_none=True) == "fork":
            return
        original(method, force=force)

    multiprocessing.set_start_method = set_start_method  # type: ignore[assignment]
    try:
        yield
    finally:
        multiprocessing.set_start_method = original  # type: ignore[assignment]


def ensure_lava_importable() -> None:
    """Import Lava's ``var_model`` once with the dataclass fix; later calls do nothing.

    Raises ``NeurodeployError`` with install instructions when lava-nc is not installed.
    """
    if VAR_MODEL in sys.modules:
        return
    if not _lava_installed():
        raise NeurodeployError(
            "the Lava backend needs lava-nc 0.10.0, which is not installed",
            where="neurodeploy.emulator.backends.lava",
            hint=INSTALL_HINT,
        )
    with _lock:
        if VAR_MODEL in sys.modules:
            return
        if sys.version_info < (3, 11):  # the check that fails only exists from 3.11 on
            with _fork_already_set_tolerated():
                importlib.import_module(VAR_MODEL)
                importlib.import_module(MP_MODULE)
            return
        with _unhashable_defaults_as_factories(VAR_MODEL), _fork_already_set_tolerated():
            try:
                importlib.import_module(VAR_MODEL)
                importlib.import_module(MP_MODULE)
            except ImportError as err:
                raise NeurodeployError(
                    f"lava-nc is installed but cannot be imported: {err}",
                    where=VAR_MODEL,
                    hint=INSTALL_HINT,
                ) from err
