"""taskspace: which pretrained expert should I transfer from for this new image task?"""

__version__ = "0.1.0"

from .numerics import pin_environment as _pin_environment

_pin_environment()  # before torch and numpy load (taskspace.numerics): the same numbers on any x86-64 CPU
