"""The uplink: YRD as lower platform to an upper one (the national platform), JT/T 809.

:mod:`.warn` our alert types -> the standard's WARN_TYPE; :mod:`.records` what goes up
(accepted pings as GNSS_DATA) and the records for the desk (requests, answers);
:mod:`.ledger` what is known delivered (link-test round trips, offsets to commit);
:mod:`.session` the pure main-link session (login 0x1001/0x1002, link test 0x1005/0x1006,
the frames of 0x1202, 0x1203, 0x1402, 0x1301, 0x1401); :mod:`.requests` the upper
platform's requests (0x9301, 0x9401, 0x9502, 0x9503) turned into records;
:mod:`.process` the asyncio process (:func:`~.process.run_uplink`); :mod:`.metrics` its
Prometheus metrics; :mod:`.simulator` a simulated upper platform for the demo and tests.
"""
