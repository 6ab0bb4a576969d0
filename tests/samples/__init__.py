"""Sample payloads in the shapes AWS sends them, for tests."""
