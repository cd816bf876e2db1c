"""Allows `python -m voice_agent`."""

import sys

from voice_agent.cli import main

sys.exit(main())
