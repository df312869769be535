"""The ``convprop`` command's further subcommands, one module each.

``convprop train``, ``evaluate`` and ``predict`` live in :mod:`convprop.cli`; every other
subcommand is a module here, found by :func:`discover`: module ``foo_bar`` is the command
``convprop foo-bar`` and defines ``add_parser(sub)`` (add its parser to argparse's
subparsers ``sub``; the help line is the one shown by ``convprop --help``) and
``run(args) -> int`` (the exit status). Errors are reported by :func:`convprop.cli.main` as
one line, as for the built-in commands.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["discover"]


def discover() -> dict:
    """``{command name: module}`` for every module of this package, sorted by name."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        found[info.name.replace("_", "-")] = mod
    return found
