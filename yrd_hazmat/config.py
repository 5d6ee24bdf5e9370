"""One typed settings object, read from environment variables.

Every variable is documented in README.md ("Configuration"). Connection
variables keep their conventional names (``KAFKA_BOOTSTRAP``, ``REDIS_URL``);
everything else is prefixed ``YRD_``. Secrets are ``SecretStr`` and never
print: ``repr(settings)`` and :meth:`Settings.summary` mask them.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    """Accept both the bare conventional name and the ``YRD_`` prefixed one."""
    return AliasChoices(name, f"YRD_{name}")


class Settings(BaseSettings):
    """Runtime configuration of the worker, the CLI and the simulator."""

    model_config = SettingsConfigDict(env_prefix="YRD_", extra="ignore", populate_by_name=True)

    # --- connections -----------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:19092", validation_alias=_env("KAFKA_BOOTSTRAP"))
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:16379/0"), validation_alias=_env("REDIS_URL")
    )

    # --- topics (the contract in schemas/) --------------------------------
    app_id: str = "yrd-hazmat"

    @property
    def topic_ticks(self) -> str:
        """Internal topic of timer ticks, co-partitioned with the pings."""
        return f"{self.app_id}-ticks"
    topic_pings: str = "yrd.pings"
    topic_alerts: str = "yrd.alerts"
    topic_deadletter: str = "yrd.deadletter"
    topic_permits: str = "yrd.permits"
    topic_zones: str = "yrd.zones"
    topic_handovers: str = "yrd.handovers"
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)

    # --- processing -------------------------------------------------------
    batch_max: int = Field(2000, ge=1, description="pings per stream.take batch")
    batch_within_s: float = Field(0.1, gt=0, description="max wait to fill a batch")
    max_ping_bytes: int = Field(16_384, ge=256, description="larger pings are dead-lettered")
    deadletter_max_raw_bytes: int = Field(262_144, ge=1024)

    # --- rules: speeding (Measures for Road Transport of Dangerous Goods, Art. 46)
    speed_limit_expressway_kmh: float = Field(80.0, gt=0)
    speed_limit_other_kmh: float = Field(60.0, gt=0)
    speeding_min_duration_s: float = Field(30.0, ge=0)

    # --- rules: restricted zones (yrd.zones and an optional start-up file)
    zones_file: str | None = Field(None, description="GeoJSON FeatureCollection loaded at start")
    zone_margin_m: float = Field(30.0, ge=0, description="hysteresis distance at zone edges")
    zone_min_inside_s: float = Field(20.0, ge=0, description="time inside that confirms entry")
    zone_min_outside_s: float = Field(20.0, ge=0, description="time outside that confirms exit")

    # --- rules: permits and handovers
    permit_required_pattern: str = Field(
        ".*", description="plates (regex, full match) that must hold a permit to move; '' = none"
    )
    permit_min_moving_s: float = Field(60.0, ge=0, description="moving without one before alerting")
    route_deviation_raise_s: float = Field(60.0, ge=0)
    route_deviation_clear_s: float = Field(30.0, ge=0)
    handover_margin_m: float = Field(200.0, ge=0, description="distance across that confirms a crossing")
    handover_min_across_s: float = Field(60.0, ge=0, description="time across that confirms a crossing")
    handover_notice_s: float = Field(900.0, ge=0, description="pre-notice horizon before a border")

    # --- rules: driving time, stops, alarms, data quality
    fatigue_max_driving_s: float = Field(4 * 3600.0, gt=0, description="driving without a rest")
    fatigue_min_rest_s: float = Field(20 * 60.0, gt=0, description="a rest that ends a stint")
    stop_max_s: float = Field(30 * 60.0, gt=0, description="stopped outside depots")
    stop_max_sensitive_s: float = Field(10 * 60.0, gt=0, description="stopped in a restricted zone")
    lateness_s: float = Field(
        0.0, ge=0, description="event-time lateness bound of the reorder buffer (0: none)"
    )
    signal_lost_s: float = Field(300.0, gt=0, description="silence on a trip before SIGNAL_LOST")
    signal_check_interval_s: float = Field(10.0, gt=0, description="how often silence is checked")
    implausible_speed_kmh: float = Field(200.0, gt=0, description="faster between fixes: a bad fix")

    # --- outputs ----------------------------------------------------------
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 disables /metrics")
    metrics_host: str = "0.0.0.0"
    redis_prefix: str = "yrd"
    redis_position_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    log_level: str = "INFO"

    @property
    def faust_broker(self) -> str:
        """Faust's broker URL list (``kafka://host:port;kafka://...``)."""
        return ";".join(f"kafka://{hp.strip()}" for hp in self.kafka_bootstrap.split(","))

    def kafka_options(self) -> dict[str, Any]:
        """Connection keyword arguments for any aiokafka client (admin, producer, consumer)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol.upper(),
        }
        if options["security_protocol"].endswith("SSL"):
            options["ssl_context"] = ssl.create_default_context()
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def summary(self) -> dict[str, object]:
        """Settings as a dict safe to log: secrets masked, URL passwords hidden."""
        out = self.model_dump(mode="json")
        out["redis_url"] = _mask_url(self.redis_url.get_secret_value())
        if self.kafka_sasl_password is not None:
            out["kafka_sasl_password"] = "**********"
        return out


def _mask_url(url: str) -> str:
    """Hide the password of a URL such as ``redis://:secret@host:6379/0``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
