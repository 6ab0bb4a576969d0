"""The laptop side of tierup: the ``tierup`` CLI and the local stack behind ``tierup dev``."""
