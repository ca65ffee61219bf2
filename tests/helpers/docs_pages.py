"""The fenced code blocks of a docs page: (language, title, text) of each."""

from __future__ import annotations

import re

BLOCK = re.compile(r"^```(\w+)(?: title=\"([^\"]+)\")?\n(.*?)^```", re.MULTILINE | re.DOTALL)
