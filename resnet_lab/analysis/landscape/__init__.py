"""Loss landscapes (the math): a package whose modules are split by concern in the next step; for now
:mod:`.surface` holds all of it and every public name is importable from here."""

from .surface import *  # noqa: F401,F403
