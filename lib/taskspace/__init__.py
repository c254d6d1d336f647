"""taskspace: which pretrained expert should I transfer from for this new image task?"""

__version__ = "0.1.0"
