"""The worker: the Faust app with every agent attached.

``faust -A agents.worker worker`` (or ``yrd-hazmat worker``) runs it. The agents' modules
import the app from :mod:`agents.app`; this module imports them all, so the app never
imports its own agents (no import circle).
"""

from agents import incidents, permits, process_pings, resources, zones  # noqa: F401  (attach the agents)
from agents.app import app

__all__ = ["app"]
