"""One typed settings object, read from environment variables.

Every variable is documented in README.md ("Configuration"). Connection
variables keep their conventional names (``KAFKA_BOOTSTRAP``, ``REDIS_URL``);
everything else is prefixed ``YRD_``. Secrets are ``SecretStr`` and never
print: ``repr(settings)`` and :meth:`Settings.summary` mask them, and so does
:func:`mask_url` for a URL's password, whether in its user part
(``redis://user:secret@host``) or its query (``?password=secret``).

An invalid value stops the process with one line naming the variable
(:class:`InvalidSettings`, raised by :func:`load_settings` and :func:`get_settings`).
"""

from __future__ import annotations

import os
import re
import ssl
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
REDIS_URL_SCHEMES = ("redis", "rediss", "unix")


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
    kafka_ssl_cafile: str | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL)"
    )
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
    topic_terminals: str = "yrd.terminals"
    topic_incidents: str = "yrd.incidents"
    topic_incident_actions: str = "yrd.incident-actions"
    topic_resources: str = "yrd.resources"
    topic_vehicle_terminals: str = "yrd.vehicle-terminals"
    topic_commands: str = "yrd.commands"
    topic_command_results: str = "yrd.command-results"
    topic_media: str = "yrd.media"
    topic_platforms: str = "yrd.platforms"
    topic_platform_vehicles: str = "yrd.platform-vehicles"
    topic_ewaybills: str = "yrd.ewaybills"
    topic_platform_reports: str = "yrd.platform-reports"
    topic_platform_requests: str = "yrd.platform-requests"
    topic_platform_request_results: str = "yrd.platform-request-results"
    topic_link_states: str = "yrd.link-states"
    link_state_heartbeat_s: float = Field(
        10.0, gt=0, description="a gateway and the uplink write the state of the JT/T 809 "
                                "links they hold (yrd.link-states) this often while one is up, "
                                "and at once when one goes up or down")
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)

    # --- processing -------------------------------------------------------
    batch_max: int = Field(2000, ge=1, description="records per fetch (a batch is a partition's share)")
    max_ping_bytes: int = Field(16_384, ge=256, description="larger pings are dead-lettered")
    deadletter_max_raw_bytes: int = Field(262_144, ge=1024)
    # Reference records: bounded well under the broker's 1 MB record limit, so the permits
    # table's changelog record (the permit plus a few bytes) always fits.
    max_permit_bytes: int = Field(
        262_144, ge=4096, le=1_000_000, description="larger permit records are dead-lettered"
    )
    max_zone_bytes: int = Field(
        262_144, ge=4096, le=1_000_000, description="larger zone records are dead-lettered"
    )
    checkpoint_s: float = Field(
        1.0, gt=0, le=60,
        description="how often processed pings are made durable (states, then offsets)",
    )
    group_instance_id: str | None = Field(
        None, description="static group membership id ('' = off; unset = this host's slot)"
    )
    session_timeout_s: float = Field(10.0, ge=6, le=300, description="consumer group session")
    fetch_wait_ms: int = Field(
        20, ge=1, le=1500, description="longest the broker holds a fetch with nothing new"
    )
    fetch_min_bytes: int = Field(
        65_536, ge=1, le=16 * 1024 * 1024,
        description="bytes the broker gathers for a fetch before answering (or fetch_wait_ms)",
    )

    # --- rules ------------------------------------------------------------
    # Each default is the rule's own (its configuration struct in yrd_hazmat/core/rules/, ms
    # there, seconds here), repeated rather than imported: the rule modules load numpy,
    # shapely and pyproj, which the CLI and the gateway importing this module do not need.
    # tests/unit/test_rules_settings.py keeps them, and README.md's table, in agreement.

    # --- rules: speeding (Measures for Road Transport of Dangerous Goods, Art. 46)
    speed_limit_expressway_kmh: float = Field(80.0, gt=0)
    speed_limit_other_kmh: float = Field(60.0, gt=0)
    speeding_min_duration_s: float = Field(30.0, ge=0)
    speeding_max_gap_s: float = Field(
        300.0, gt=0, description="a gap between pings longer than this restarts a speeding count "
                                 "(SPEEDING and ZONE_SPEEDING)")
    moving_kmh: float = Field(5.0, gt=0, le=30,
                              description="at or above this speed a truck is moving (all rules)")

    # --- rules: restricted zones (yrd.zones and an optional start-up file)
    zones_file: str | None = Field(None, description="GeoJSON FeatureCollection loaded at start")
    zone_margin_m: float = Field(30.0, ge=0, description="hysteresis distance at zone edges")
    zone_min_inside_s: float = Field(20.0, ge=0, description="time inside that confirms entry")
    zone_min_outside_s: float = Field(20.0, ge=0, description="time outside that confirms exit")
    segment_max_gap_s: float = Field(
        900.0, ge=0, description="longest gap between two fixes whose straight line is checked "
                                 "against zones (and the corridor)")
    segment_max_speed_kmh: float = Field(
        130.0, gt=0, description="highest average speed between two fixes for that line")

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
    future_tolerance_s: float = Field(
        300.0, ge=0, description="a fix stamped further ahead of the clock (the record's time on "
                                 "the broker) is refused as time_ahead, never the truck's present")
    history_horizon_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="kept fixes (uploaded late) older than this, against "
                                           "the truck's latest, are refused as too_old")

    # --- gateway (JT/T 808 terminals, JT/T 809 platforms) ------------------
    gateway_host: str = Field("0.0.0.0", description="address the gateway listens on")
    jt808_port: int = Field(6808, ge=1, le=65535, description="JT/T 808 terminals' TCP port")
    jt809_port: int = Field(6809, ge=1, le=65535, description="JT/T 809 platforms' TCP port")
    jt809_user_id: int = Field(0, ge=0, description="the lower platform's JT/T 809 user id "
                                                    "(0: no JT/T 809 link)")
    jt809_password: SecretStr = Field(SecretStr(""), description="its password (8 bytes at most)")
    jt809_access_code: int = Field(0, ge=0, description="its access code (MSG_GNSSCENTERID)")
    jt809_m1: int = Field(0, ge=0, description="simple-encryption constant M1")
    jt809_ia1: int = Field(0, ge=0, description="simple-encryption constant IA1")
    jt809_ic1: int = Field(0, ge=0, description="simple-encryption constant IC1")
    jt809_edition: int = Field(
        2011, description="the JT/T 809 edition (2011 or 2019) of the lower platform of "
                          "YRD_JT809_USER_ID")
    jt809_listen: bool = Field(
        False, description="listen on YRD_JT809_PORT for the lower platforms configured on "
                           "YRD_TOPIC_PLATFORMS even without YRD_JT809_USER_ID")
    jt809_max_frame_bytes: int = Field(
        65_536, ge=1024, le=4 * 1024 * 1024,
        description="a JT/T 809 frame longer than this is dropped unread")
    jt809_login_attempts: int = Field(
        10, ge=1, description="logins (UP_CONNECT_REQ) from one source address within "
                              "YRD_JT809_LOGIN_WINDOW_S; more are answered 'busy' and closed")
    jt809_login_failures: int = Field(
        5, ge=1, description="failed logins of one platform within YRD_JT809_LOGIN_WINDOW_S "
                             "before its logins are refused ('busy') from any address but "
                             "the one it last logged in from")
    jt809_login_window_s: float = Field(60.0, gt=0, description="see YRD_JT809_LOGIN_ATTEMPTS")
    jt809_slave_keepalive_s: float = Field(
        60.0, gt=0, description="a link test (DOWN_LINKTEST_REQ 0x9005) on each slave link "
                                "this often")
    jt809_slave_timeout_s: float = Field(
        10.0, gt=0, description="a slave link that does not connect, or answer its login or a "
                                "link test, within this is dropped and tried again")
    jt809_slave_retry_max_s: float = Field(
        60.0, gt=0, description="longest wait between two attempts to reconnect a slave link "
                                "(from 0.5 s, doubling)")
    jt809_request_link_wait_s: float = Field(
        10.0, gt=0, description="a downward request (yrd.platform-requests) for a platform with "
                                "no link up waits this long for one, then is recorded failed")
    jt809_request_expiry_s: float = Field(
        600.0, gt=0, description="default life of a downward request not sent yet "
                                 "(yrd-hazmat platform ... --expires-in)")
    jt809_answer_within_s: float = Field(
        600.0, gt=0, description="default time a platform has to answer an inspection, a text "
                                 "or a photo request (--deadline); past it the request is late")
    # --- uplink: YRD as lower platform to the national platform (JT/T 809) ----
    uplink_host: str = Field("", description="the upper (national) platform's main-link "
                                             "address (empty: no uplink)")
    uplink_port: int = Field(6809, ge=1, le=65535, description="its main-link port")
    uplink_user_id: int = Field(0, ge=0, description="our JT/T 809 user id there (USERID)")
    uplink_password: SecretStr = Field(SecretStr(""), description="our password there "
                                                                  "(8 bytes at most)")
    uplink_access_code: int = Field(0, ge=0, description="our access code (MSG_GNSSCENTERID)")
    uplink_edition: int = Field(2011, ge=2011, le=2019,
                                description="the JT/T 809 edition of the link: 2011 or 2019")
    uplink_m1: int = Field(0, ge=0, description="simple-encryption constant M1 (all three 0: "
                                                "frames not encrypted)")
    uplink_ia1: int = Field(0, ge=0, description="simple-encryption constant IA1")
    uplink_ic1: int = Field(0, ge=0, description="simple-encryption constant IC1")
    uplink_down_host: str = Field("127.0.0.1", description="our slave-link server's address, "
                                                           "given at login (DOWN_LINK_IP)")
    uplink_down_port: int = Field(0, ge=0, le=65535, description="our slave-link server's port, "
                                                                 "given at login and listened "
                                                                 "on (0: no slave link)")
    uplink_down_bind: str = Field("0.0.0.0", description="address the slave-link server "
                                                         "listens on")
    uplink_platform_id: str = Field("", description="2019: our PLATFORM_ID (11 characters) in "
                                                    "the alarms sent up")
    uplink_plate_colour: int = Field(2, ge=0, le=255, description="VEHICLE_COLOR sent for every "
                                                                  "truck (2: yellow)")
    uplink_keepalive_s: float = Field(
        30.0, gt=0, description="a link test (UP_LINKTEST_REQ 0x1005) at least this often")
    uplink_confirm_s: float = Field(
        1.0, gt=0, description="how often what was sent is confirmed by a link test round "
                               "trip (and its offsets committed)")
    uplink_timeout_s: float = Field(
        10.0, gt=0, description="a login or link test not answered within this drops the link")
    uplink_retry_min_s: float = Field(0.5, gt=0, description="first wait before reconnecting")
    uplink_retry_max_s: float = Field(30.0, gt=0, description="longest wait before reconnecting "
                                                              "(doubling from the first)")
    uplink_group: str = Field("yrd-hazmat-uplink", description="the uplink's consumer group (its "
                                                        "committed offsets are what is known "
                                                        "delivered)")
    uplink_start: str = Field("latest", pattern="^(latest|earliest)$",
                              description="where a new consumer group starts")
    uplink_inspection_answer_s: float = Field(
        600.0, gt=0, description="time allowed to answer an inspection that gives none (2011)")
    uplink_metrics_port: int = Field(9466, ge=0, le=65535, description="0 disables /metrics")
    topic_uplink_requests: str = "yrd.uplink-requests"
    topic_uplink_answers: str = "yrd.uplink-answers"

    # --- the record: track archive (yrd_hazmat/archive) -------------------
    archive_dir: str = Field(".local/archive", description="where the archive's Parquet files "
                                                           "are kept (a local directory)")
    archive_s3_url: str = Field("", description="s3://bucket/prefix: keep the archive on "
                                                "S3-compatible object storage instead of "
                                                "YRD_ARCHIVE_DIR")
    archive_s3_endpoint: str = Field("", description="the object store's URL (e.g. "
                                                     "http://127.0.0.1:8333); empty: AWS")
    archive_s3_region: str = "us-east-1"
    archive_s3_access_key: str = ""
    archive_s3_secret_key: SecretStr | None = None
    archive_group: str = Field("yrd-hazmat-archive", description="the archiver's consumer group "
                                                                 "(its offsets show its lag; the "
                                                                 "files say what is written)")
    archive_flush_s: float = Field(60.0, gt=0, description="records are written at least this "
                                                           "often")
    archive_flush_rows: int = Field(200_000, ge=1, description="... or when this many wait")
    archive_keep_pings_days: int = Field(183, ge=1, description="pings are deleted this many "
                                                                "days after their day (6 months)")
    archive_keep_alerts_days: int = Field(1096, ge=1, description="alerts: 3 years")
    archive_keep_incidents_days: int = Field(1096, ge=1, description="incident records: 3 years")
    archive_keep_audit_days: int = Field(1096, ge=1, description="the audit log: 3 years")
    archive_compact_files: int = Field(8, ge=2, description="a day's files of one partition are "
                                                            "merged into one when there are at "
                                                            "least this many")
    archive_compact_after_days: int = Field(1, ge=0, description="only days at least this old "
                                                                 "are compacted")
    archive_metrics_port: int = Field(9467, ge=0, le=65535, description="0 disables /metrics")
    assess_gap_s: float = Field(300.0, gt=0, description="the month's track completeness: two "
                                                       "fixes further apart in time break the "
                                                       "track between them")
    assess_drift_kmh: float = Field(200.0, gt=0, description="a fix reached from the one before "
                                                            "at a higher speed is a drift point")
    assess_drift_min_km: float = Field(1.0, ge=0, description="... when the jump is also at least "
                                                             "this long (GNSS jitter is not drift)")
    assess_every_s: float = Field(600.0, gt=0, description="yrd-hazmat figures: today's figures "
                                                          "are computed this often")
    assess_metrics_port: int = Field(9468, ge=0, le=65535, description="yrd-hazmat figures' "
                                                                      "/metrics (0: off)")
    # --- the notifier (yrd-hazmat notify run) ----------------------------
    topic_subscriptions: str = "yrd.subscriptions"
    topic_notifications: str = "yrd.notifications"
    topic_deadlines: str = "yrd.deadlines"
    topic_desk_users: str = "yrd.desk-users"
    topic_audit: str = "yrd.audit"
    notify_clock_horizon_s: float = Field(
        2 * 86400, gt=0, description="at a restart the notifier reads the alerts of this "
                                     "long before its offsets again, for their deadlines only")
    notify_group: str = Field("yrd-hazmat-notifier", description="the notifier's consumer "
                              "group on yrd.alerts (run one notifier)")
    notify_start: str = Field("latest", pattern="^(latest|earliest)$",
                              description="where a notifier whose group has no offsets "
                                          "starts reading alerts: latest (from now on) or "
                                          "earliest (everything Kafka keeps)")
    notify_max_attempts: int = Field(8, ge=1, le=100, description="a delivery is given up "
                                     "after this many failed attempts (5 s, 10 s, 20 s... "
                                     "apart, at most 10 min)")
    notify_concurrency: int = Field(8, ge=1, le=256, description="deliveries sent at once")
    notify_resend_in_doubt: str = Field(
        "webhook,email", description="channels on which an attempt interrupted by a "
        "crash is sent again (marked as a possible repeat, its receiver drops it by id); on "
        "the others it is left in_doubt (comma-separated: webhook,email,dingtalk,wecom,"
        "feishu,sms)")
    notify_timeout_s: float = Field(10.0, gt=0, description="one attempt's time limit")
    notify_desk_url: str = Field("", description="the desk's address, for links in messages "
                                                 "(e.g. https://desk.example.org)")
    notify_metrics_port: int = Field(9469, ge=0, le=65535, description="the notifier's "
                                                                       "/metrics (0: off)")
    smtp_host: str = Field("", description="the SMTP server for e-mail subscriptions "
                                           "('' : e-mail deliveries fail with that reason)")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(False, description="STARTTLS after connecting")
    smtp_ssl: bool = Field(False, description="TLS from the start (port 465)")
    smtp_sender: str = Field("yrd-hazmat@localhost", description="the From address")
    gateway_idle_s: float = Field(
        180.0, gt=0, description="a connection silent this long is closed (terminals "
                                 "heartbeat every 60 s by default)")
    gateway_max_connections: int = Field(20_000, ge=1, description="more are refused")
    gateway_auth_timeout_s: float = Field(
        30.0, gt=0, description="a connection not authenticated (JT/T 808 0x0102 accepted, "
                                "JT/T 809 login accepted) this long after it opened is closed")
    gateway_max_per_address: int = Field(
        256, ge=1, description="open connections from one source address; more are refused "
                               "(mobile networks put many terminals behind one address)")
    command_timeout_s: float = Field(
        60.0, gt=0, description="a command sent to a terminal and not answered this long "
                                "after is a timeout")
    command_expiry_s: float = Field(
        3600.0, gt=0, description="default life of a command for a truck not connected "
                                  "(yrd-hazmat command --expires-in, the desk)")
    gateway_metrics_port: int = Field(9465, ge=0, le=65535, description="0 disables /metrics")

    # --- emergency response ---------------------------------------------
    resources_file: str | None = Field(
        None, description="emergency resources loaded at start (JSON like "
                          "yrd_hazmat/data/resources.json)")
    # The next three set the rules' ResponseConfig (emergency/scene.py): see the rules' note
    responders_max: int = Field(5, ge=1, le=50, description="responders proposed per critical alert")
    responder_road_factor: float = Field(
        1.35, ge=1.0, le=3.0, description="road distance over straight-line distance")
    responder_speed_kmh: float = Field(60.0, gt=0, description="average speed of a response")
    exposure_max_age_s: float = Field(
        3600.0, gt=0, description="a truck the read model saw longer ago before an emergency "
                                  "is not listed as exposed")

    # --- police desk ------------------------------------------------------
    desk_host: str = Field("0.0.0.0", description="address the desk listens on")
    desk_port: int = Field(8808, ge=0, le=65535, description="the desk's HTTP port")
    desk_users: str | None = Field(None, description="JSON file of desk users (hashed passwords)")
    desk_secret: SecretStr | None = Field(
        None, description="key that signs desk sessions (unset: a random one per start)")
    desk_session_s: float = Field(8 * 3600.0, gt=0, description="a desk session lasts this long")
    desk_idle_s: float = Field(
        1800.0, gt=0, description="a desk session unused this long ends (every call the page "
                                  "makes counts as use)")
    desk_secure_cookie: bool = Field(
        False, description="mark the session cookie Secure and expect https:// origins (set it "
                           "when the desk is served over HTTPS, e.g. behind a TLS proxy)")
    desk_stale_s: float = Field(
        600.0, gt=0, description="a truck whose latest ping is older than this is shown stale")
    desk_login_failures: int = Field(
        5, ge=1, description="failed logins for one name, or from one address, within "
                             "YRD_DESK_LOGIN_WINDOW_S before logins from it are refused (429)")
    desk_login_window_s: float = Field(300.0, gt=0, description="see YRD_DESK_LOGIN_FAILURES")
    desk_lockout_s: float = Field(
        60.0, gt=0, description="the first refusal's length; each further one doubles it, up "
                                "to an hour")
    desk_tile_url: str | None = Field(
        None, description="a map tile URL template ({z}/{x}/{y}) the desk's page may load "
                          "(unset: outlines only, no network needed)")

    # --- outputs ----------------------------------------------------------
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 disables /metrics")
    metrics_host: str = "0.0.0.0"
    redis_prefix: str = "yrd"
    redis_position_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    log_level: str = "INFO"
    readmodel_flush_s: float = Field(
        0.5, gt=0, le=60, description="read model flush interval (its staleness bound, Redis up)"
    )
    redis_timeout_s: float = Field(
        2.0, gt=0, le=60, description="Redis connect/read timeout: a hung Redis fails a flush"
    )
    readmodel_max_alerts: int = Field(
        200_000, ge=2000, description="alerts held for Redis in an outage before compaction"
    )

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
            options["ssl_context"] = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def summary(self) -> dict[str, object]:
        """Settings as a dict safe to log: secrets masked, URL passwords hidden."""
        out = self.model_dump(mode="json")
        out["redis_url"] = mask_url(self.redis_url.get_secret_value())
        if self.kafka_sasl_password is not None:
            out["kafka_sasl_password"] = MASK
        return out

    # --- checks (each error names its variable, see InvalidSettings) -------

    @field_validator("kafka_security_protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in KAFKA_SECURITY_PROTOCOLS:
            raise ValueError(f"must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}")
        return value

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _known_mechanism(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().upper()
        if value not in KAFKA_SASL_MECHANISMS:
            raise ValueError(f"must be one of {', '.join(KAFKA_SASL_MECHANISMS)}")
        return value

    @field_validator("kafka_ssl_cafile")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        # The message never repeats the URL: it may hold a password.
        scheme = value.get_secret_value().partition("://")[0].lower()
        if scheme not in REDIS_URL_SCHEMES:
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value

    @field_validator("jt809_edition")
    @classmethod
    def _known_edition(cls, value: int) -> int:
        if value not in (2011, 2019):
            raise ValueError("must be 2011 or 2019")
        return value

    @field_validator("notify_resend_in_doubt")
    @classmethod
    def _channels(cls, value: str) -> str:
        known = {"webhook", "email", "dingtalk", "wecom", "feishu", "sms"}
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"unknown channels {unknown}: {', '.join(sorted(known))}")
        return ",".join(names)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @model_validator(mode="after")
    def _sasl_complete(self) -> "Settings":
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_mechanism and self.kafka_sasl_username
                         and self.kafka_sasl_password is not None):
            raise ValueError(
                f"YRD_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "YRD_KAFKA_SASL_MECHANISM, YRD_KAFKA_SASL_USERNAME and YRD_KAFKA_SASL_PASSWORD"
            )
        if self.kafka_sasl_mechanism and not sasl:
            raise ValueError(
                "YRD_KAFKA_SASL_MECHANISM is set but YRD_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol} (use SASL_SSL or SASL_PLAINTEXT)"
            )
        return self


# --------------------------------------------------------------------------
# Masking secrets
# --------------------------------------------------------------------------

MASK = "**********"
_SECRET_QUERY_KEY = re.compile(r"pass|secret|token", re.I)
# Fallback for text that is not one well-formed URL: scheme://user:PASSWORD@ and key=PASSWORD.
_USERINFO_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]*(@)", re.I)
_QUERY_PASSWORD = re.compile(r"(\b[\w.-]*(?:pass|secret|token)[\w.-]*=)[^&\s#]*", re.I)


def mask_url(url: str) -> str:
    """The URL with its passwords replaced by ``****``: in the user part
    (``redis://user:secret@host``) and in query arguments whose name holds ``pass``,
    ``secret`` or ``token`` (``?password=secret``, ``ssl_password=...``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:****@{hostport}"
    query = "&".join(
        f"{key}=****" if _SECRET_QUERY_KEY.search(unquote_plus(key)) else item
        for item in parts.query.split("&")
        for key in [item.partition("=")[0]]
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else urlunsplit(
        parts._replace(netloc=netloc, query="", fragment=""))
    return rebuilt + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Free text with URL passwords masked, and any of ``secrets`` replaced by ``****``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    text = _USERINFO_PASSWORD.sub(r"\1****\2", text)
    return _QUERY_PASSWORD.sub(r"\1****", text)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


class InvalidSettings(SystemExit):
    """An environment variable holds an invalid value.

    A :class:`SystemExit` whose code is one line, ``error: VARIABLE: problem``
    (several problems are joined with ``; ``): uncaught, Python prints that
    line and exits 1 without a traceback (``faust -A agents.worker worker``);
    ``yrd-hazmat`` prints it and exits 2. The value itself is never repeated,
    as it may be a secret.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_error(cls, exc: ValidationError) -> "InvalidSettings":
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            message = error["msg"].removeprefix("Value error, ")
            if message[1:2].islower():  # "Input should be" -> "input should be"; not "YRD_..."
                message = message[:1].lower() + message[1:]
            if error["loc"]:
                problems.append(f"{env_var(str(error['loc'][0]))}: {message}")
            else:
                problems.append(message)
        return cls("error: " + "; ".join(problems))


def env_var(field: str) -> str:
    """The environment variable of a settings field (``topic_partitions`` -> ``YRD_TOPIC_PARTITIONS``).

    A field with two names (``REDIS_URL`` or ``YRD_REDIS_URL``) is named as it is set.
    """
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if choices and (field == name or field.upper() in choices):
            given = {key.upper() for key in os.environ}
            return next((c for c in choices if c in given), choices[0])
    return f"YRD_{field.upper()}"


def load_settings() -> Settings:
    """Settings from the environment now; an invalid value raises :class:`InvalidSettings`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings.from_error(exc) from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment (see :func:`load_settings`)."""
    return load_settings()
