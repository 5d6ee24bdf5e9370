"""The private fields of Faust and aiokafka the worker relies on still exist in the
installed versions (an upgrade that drops one fails here, naming it and where it is used)."""

from agents.delivery.private import FIELDS, PrivateField, missing, resolve


def test_every_private_field_the_worker_touches_exists_in_the_installed_libraries():
    gone = missing()
    assert not gone, "\n".join(f"{f.owner}.{f.name} (used in {f.used_in}: {f.why})" for f in gone)
    assert len(FIELDS) >= 20


def test_the_check_notices_a_field_that_is_not_there():
    ghost = PrivateField("aiokafka.consumer.fetcher:Fetcher", "_no_such_field", "nowhere", "a test")
    import agents.delivery.private as private
    saved = private.FIELDS
    private.FIELDS = (*saved, ghost)
    try:
        assert missing() == [ghost]
    finally:
        private.FIELDS = saved


def test_every_owner_is_importable():
    for f in FIELDS:
        assert isinstance(resolve(f.owner), type), f.owner
