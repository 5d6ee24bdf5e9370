"""JT/T 808: the protocol every hazmat truck's satellite terminal speaks (2013 and 2019).

:mod:`.frame` splits a TCP byte stream into frames and reads/writes the header;
:mod:`.messages` reads and writes the message bodies the gateway handles;
:mod:`.terminal` is a simulated terminal (tests, demo, benchmark). Pure code: the
asyncio server is :mod:`yrd_hazmat.gateway`.
"""
