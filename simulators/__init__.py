"""Local stand-ins for external providers, for development and tests."""
