"""Local development: DEBUG on, console providers, a local SQLite file unless DATABASE_URL says otherwise."""

import os

os.environ.setdefault("DEBUG", "1")

from .base import *  # noqa: E402,F403
