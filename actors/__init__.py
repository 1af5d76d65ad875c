"""celeriac.actors."""
