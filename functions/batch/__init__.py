"""Batch work: the worker that runs queued batch lines, and how it is wired and fed."""
