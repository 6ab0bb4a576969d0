"""In-memory fakes of the core's ports, for unit tests (never for `tierup dev` or functional tests)."""
