"""refcr: a checkpoint/restore engine for Linux processes."""
__version__ = "0.1.0"
