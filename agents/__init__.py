"""Faust agents of YRD Hazmat: thin wiring of topics and tables to the pure core."""
