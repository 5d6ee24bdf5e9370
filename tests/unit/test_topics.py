"""The topics the worker creates: the contract's, its ticks, and every table's changelog."""

from yrd_hazmat.config import Settings
from yrd_hazmat.topics import topic_specs


def test_reference_topics_and_changelogs_are_compacted_and_cover_every_table():
    from agents.worker import app

    settings = Settings()
    specs = topic_specs(settings)
    for table in app.tables.values():
        assert specs[table.changelog_topic.get_topic_name()]["cleanup.policy"] == "compact"
    for name in (settings.topic_zones, settings.topic_permits):
        assert specs[name]["cleanup.policy"] == "compact"
    assert {settings.topic_pings, settings.topic_alerts, settings.topic_deadletter,
            settings.topic_handovers, settings.topic_ticks} <= specs.keys()
    assert int(specs[settings.topic_pings]["max.message.bytes"]) > 1_000_000
