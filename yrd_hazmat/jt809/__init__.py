"""JT/T 809: platform-to-platform exchange (an enterprise or provincial platform passing
its vehicles' positions up). :mod:`.frame` the framing, :mod:`.messages` the bodies,
:mod:`.platform` a simulated lower platform. The gateway's side is
:mod:`yrd_hazmat.gateway.link`."""
