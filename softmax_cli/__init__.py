"""softmax: the softmax function and everything around it, from the command line."""

__version__ = "0.1.0"
