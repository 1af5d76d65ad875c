"""celeriac.runtime."""
