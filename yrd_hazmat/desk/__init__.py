"""The police desk: a web application over the read model and the alert stream.

:mod:`.users` (who may sign in, for which jurisdiction), :mod:`.sessions` (signed,
expiring session tokens), :mod:`.actions` (acknowledge / assign / note, kept on a
compacted topic), :mod:`.app` (the HTTP API and the live feed).
"""
