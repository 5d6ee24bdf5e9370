"""Restricted zones: their contract, schedules, compiled geometry and the live registry."""
