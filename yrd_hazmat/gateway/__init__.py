"""The gateway: terminals (JT/T 808) and platforms (JT/T 809) into ``yrd.pings``.

:mod:`.session` is the protocol logic of one terminal connection (pure: frames in,
answers, pings, registrations and rejections out); :mod:`.server` the asyncio TCP
server around it, with Kafka; :mod:`.registry` the registered terminals, kept on
the compacted ``yrd.terminals`` topic.
"""
