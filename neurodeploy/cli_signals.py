"""Ctrl-C before the command line is ready: one line and exit 130, not an import traceback.

Importing the command line (typer, rich, the studies) takes a moment, and a Ctrl-C in that window would
print a traceback from inside importlib. This module is the first thing ``neurodeploy.cli`` imports; when
the process is the command line (``neurodeploy ...`` or ``python -m neurodeploy.cli``), it installs a
handler that says one line and exits 130. ``cli.main`` puts Python's own handler back once it runs, so
that interrupted writes clean up as usual. Importing ``neurodeploy.cli`` as a library changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = b"error: interrupted (outputs are written whole or not at all)\n"


def interrupted_while_starting(signum: int, frame: object) -> None:
    """Nothing has been written yet: say so in one line and leave."""
    os.write(2, INTERRUPTED)
    os._exit(130)


def is_the_command_line() -> bool:
    """Whether this process is ``neurodeploy ...`` or ``python -m neurodeploy.cli``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", "") == "neurodeploy.cli" or os.path.basename(sys.argv[0] if sys.argv else "") == (
        "neurodeploy"
    )


def redeliver_lost_interrupts() -> None:
    """A Ctrl-C that lands inside a weakref callback or ``__del__`` is swallowed by Python ("Exception
    ignored in ...") and the command would run on. Raise it again a millisecond later, from a timer: by
    then the callback has returned and Python can raise it where the normal one-line exit follows (a
    signal sent from inside the hook would be handled inside the hook, and swallowed again)."""
    previous = sys.unraisablehook

    def again(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def hook(unraisable: object) -> None:
        if isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            signal.signal(signal.SIGALRM, again)
            signal.setitimer(signal.ITIMER_REAL, 0.001)
            return
        previous(unraisable)  # type: ignore[arg-type]

    sys.unraisablehook = hook


if is_the_command_line():
    signal.signal(signal.SIGINT, interrupted_while_starting)
