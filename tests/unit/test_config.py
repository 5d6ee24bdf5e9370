"""Settings come from the environment, and secrets never print."""

from yrd_hazmat.config import Settings


def test_conventional_and_prefixed_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("YRD_TOPIC_ALERTS", "police.alerts")
    monkeypatch.setenv("YRD_SPEED_LIMIT_EXPRESSWAY_KMH", "70")
    s = Settings()
    assert s.kafka_bootstrap == "broker:9092"
    assert s.topic_alerts == "police.alerts"
    assert s.speed_limit_expressway_kmh == 70.0
    assert s.faust_broker == "kafka://broker:9092"


def test_secrets_are_masked_everywhere(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://user:hunter2@cache:6380/1")
    monkeypatch.setenv("YRD_KAFKA_SASL_PASSWORD", "s3cret-pw")
    s = Settings()
    assert s.redis_url.get_secret_value() == "redis://user:hunter2@cache:6380/1"
    for text in (repr(s), str(s), str(s.summary())):
        assert "hunter2" not in text and "s3cret-pw" not in text
    assert s.summary()["redis_url"] == "redis://user:****@cache:6380/1"


def test_bad_values_fail_at_start_with_the_field_named(monkeypatch):
    monkeypatch.setenv("YRD_BATCH_MAX", "0")
    try:
        Settings()
    except ValueError as exc:
        assert "batch_max" in str(exc)
    else:
        raise AssertionError("batch_max=0 was accepted")


def test_every_kafka_client_gets_the_security_settings(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "a:9093,b:9093")
    monkeypatch.setenv("YRD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("YRD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("YRD_KAFKA_SASL_USERNAME", "carrier-7")
    monkeypatch.setenv("YRD_KAFKA_SASL_PASSWORD", "pw")
    options = Settings().kafka_options()
    assert options["bootstrap_servers"] == "a:9093,b:9093"
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_context"] is not None
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "carrier-7", "pw")
    monkeypatch.setenv("YRD_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.delenv("YRD_KAFKA_SASL_MECHANISM")
    assert set(Settings().kafka_options()) == {"bootstrap_servers", "security_protocol"}


def test_rule_settings_reach_the_rules(monkeypatch):
    from agents.processor import rules_config

    monkeypatch.setenv("YRD_FATIGUE_MAX_DRIVING_S", "7200")
    monkeypatch.setenv("YRD_ZONE_MARGIN_M", "55")
    monkeypatch.setenv("YRD_PERMIT_REQUIRED_PATTERN", "沪.*")
    monkeypatch.setenv("YRD_HANDOVER_NOTICE_S", "600")
    cfg = rules_config(Settings())
    assert cfg.fatigue.max_driving_ms == 7_200_000 and cfg.zones.margin_m == 55
    assert cfg.permits.required("沪A12345") and not cfg.permits.required("苏A12345")
    assert cfg.handover.notice_ms == 600_000 and cfg.stops.max_stop_ms == 1_800_000
