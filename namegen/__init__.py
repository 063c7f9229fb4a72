"""namegen: a character-level vanilla RNN that learns a list of names and invents new ones.

The public API; the CLI (namegen.cli) is a thin layer over these functions.
"""

__version__ = "0.1.0"
