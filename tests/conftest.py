"""Settings shared by every test: a hypothesis profile for a loaded 2-core machine."""

from __future__ import annotations

import os

from hypothesis import settings

# Hypothesis' default 200 ms deadline fails on a busy box; correctness, not speed, is tested.
settings.register_profile("celeriac", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "celeriac"))
