"""The composition root: settings, wiring, and the ``troupe`` command.

Owns: turning flags, ``TROUPE_*`` environment variables and defaults into one
:class:`Config`, building the engine and the gateway from it, seeding the demo
world, and the ``serve`` and ``replay`` subcommands. Imports every layer.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("troupe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
