"""The kernelkit version, kept apart so packaging can read it without importing zmq."""

__version__ = "0.2.0"
