"""JT/T 809: platform-to-platform exchange (an enterprise or provincial platform passing
its vehicles' positions up, the upper platform's inspections and orders coming down).
:mod:`.frame` the framing of both editions (2011, 2019); the bodies, one module per
business: :mod:`.links` link management 0x1000/0x9000, :mod:`.exchange` vehicle dynamic
exchange 0x1200/0x9200, :mod:`.inspection` platform inspection 0x1300/0x9300,
:mod:`.alarms` alarms 0x1400/0x9400, :mod:`.control` vehicle control 0x1500/0x9500,
:mod:`.static` static information 0x1600/0x9600; :mod:`.gnss` their vehicle positions,
:mod:`.codec` the shared reader and envelopes, :mod:`.bodies` any body by MSG_ID.
:mod:`.messages` the first 2011 subset (kept for the tests that lay frames out with it),
:mod:`.platform` a simulated lower platform of either edition with its slave-link server.
The gateway's side (the upper platform) is :mod:`yrd_hazmat.gateway.link` (main links),
:mod:`yrd_hazmat.gateway.slave` (slave links) and :mod:`yrd_hazmat.gateway.platform_links`
(the way down)."""
