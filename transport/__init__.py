"""celeriac.transport."""
