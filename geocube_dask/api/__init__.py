"""The HTTP API façade over a catalogue (``geocube serve``); see :func:`create_app`."""

from .app import create_app

__all__ = ["create_app"]
