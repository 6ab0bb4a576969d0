"""Adapters: each implements one port of ``functions.core.ports`` against real I/O."""
