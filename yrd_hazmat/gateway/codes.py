"""Dead-letter reasons of the gateway (besides the framing ones of
:class:`yrd_hazmat.jt808.frame.FrameError`: truncated, bad_check_code, bad_escape,
bad_header, bad_message)."""

UNSUPPORTED = "unsupported"
NOT_AUTHENTICATED = "not_authenticated"
AUTH_FAILED = "auth_failed"
NO_SUCH_VEHICLE = "no_such_vehicle"
INVALID = "invalid"
JUNK = "junk"
