"""Secrets never printed, invalid settings in one line, and the TLS material of ``up --secure``.

The commands run as real processes (``yrd-hazmat``, ``faust``, ``services.py``)
with secret-bearing settings, and their whole output is searched for the
secrets. None of this needs Kafka or Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.harness import local_services
from yrd_hazmat.config import InvalidSettings, Settings, load_settings, mask_text, mask_url

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "yrd_hazmat.cli"]
SECRETS = ("hunter2", "qu3ry-pw", "s3cret-sasl", "key-pw")
SECRET_ENV = {
    "REDIS_URL": "rediss://desk:hunter2@cache.example:6380/0?password=qu3ry-pw&ssl_password=key-pw",
    "YRD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "YRD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "YRD_KAFKA_SASL_USERNAME": "worker",
    "YRD_KAFKA_SASL_PASSWORD": "s3cret-sasl",
}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any yrd or connection setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("YRD_") and k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    return env | extra


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch):
    """Settings of the shell running the tests (e.g. a shared REDIS_URL) must not count here."""
    for key in list(os.environ):
        if key.startswith("YRD_") or key in ("KAFKA_BOOTSTRAP", "REDIS_URL"):
            monkeypatch.delenv(key)


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} printed:\n{text}"


# --- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://user:hunter2@cache:6380/1", "redis://user:****@cache:6380/1"),
    ("redis://:hunter2@cache/0", "redis://:****@cache/0"),
    ("redis://cache:6379/0?password=hunter2", "redis://cache:6379/0?password=****"),
    ("redis://cache/0?db=1&password=hunter2&socket_timeout=2",
     "redis://cache/0?db=1&password=****&socket_timeout=2"),
    ("rediss://w:pw@[::1]:6380/0?ssl_ca_certs=/etc/ca%20x.pem&ssl_password=kp",
     "rediss://w:****@[::1]:6380/0?ssl_ca_certs=/etc/ca%20x.pem&ssl_password=****"),
    ("redis://user:p%40ss@cache/0", "redis://user:****@cache/0"),
    ("redis://user:p@ss@cache/0", "redis://user:****@cache/0"),  # an unencoded @ in the password
    ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?db=0&password=****"),
    ("redis://user@cache/0?Password=hunter2#x", "redis://user@cache/0?Password=****#x"),
    ("redis://127.0.0.1:16379/0", "redis://127.0.0.1:16379/0"),
    ("redis://cache:notaport/0", "redis://cache:notaport/0"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_text_masks_urls_and_given_secrets():
    text = "using redis://u:hunter2@h/0?password=qu3ry-pw and token s3cret-sasl"
    assert mask_text(text, ("s3cret-sasl",)) == "using redis://u:****@h/0?password=**** and token ****"


def test_settings_never_show_a_secret(monkeypatch):
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    summary = s.summary()
    assert summary["redis_url"] == (
        "rediss://desk:****@cache.example:6380/0?password=****&ssl_password=****")
    assert summary["kafka_sasl_password"] == "**********"
    for text in (repr(s), str(s), str(summary), str(s.model_dump())):
        assert_no_secret(text)
    # the real values still reach the clients
    assert s.redis_url.get_secret_value() == SECRET_ENV["REDIS_URL"]
    assert s.kafka_options()["sasl_plain_password"] == "s3cret-sasl"


# --- invalid settings ------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "line"), [
    ({"YRD_TOPIC_PARTITIONS": "abc"},
     "error: YRD_TOPIC_PARTITIONS: input should be a valid integer, unable to parse string as an integer"),
    ({"YRD_BATCH_MAX": "0"}, "error: YRD_BATCH_MAX: input should be greater than or equal to 1"),
    ({"REDIS_URL": "http://u:hunter2@cache/0"},
     "error: REDIS_URL: must start with redis://, rediss:// (TLS) or unix://"),
    ({"YRD_REDIS_URL": "cache:6379?password=hunter2"},
     "error: YRD_REDIS_URL: must start with redis://, rediss:// (TLS) or unix://"),
    ({"YRD_KAFKA_SECURITY_PROTOCOL": "TLS"},
     "error: YRD_KAFKA_SECURITY_PROTOCOL: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"YRD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "YRD_KAFKA_SASL_PASSWORD": "hunter2"},
     "error: YRD_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs YRD_KAFKA_SASL_MECHANISM, "
     "YRD_KAFKA_SASL_USERNAME and YRD_KAFKA_SASL_PASSWORD"),
    ({"YRD_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
     "error: YRD_KAFKA_SSL_CAFILE: no such file: /nonexistent/ca.pem"),
    ({"YRD_LOG_LEVEL": "LOUD"},
     "error: YRD_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
])
def test_an_invalid_setting_is_one_line_naming_the_variable(monkeypatch, env, line):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert str(caught.value) == line and "\n" not in line
    assert isinstance(caught.value, SystemExit)  # uncaught: that line, no traceback


def test_several_invalid_settings_stay_on_one_line(monkeypatch):
    monkeypatch.setenv("YRD_BATCH_MAX", "0")
    monkeypatch.setenv("YRD_METRICS_PORT", "x")
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert str(caught.value).count("error:") == 1 and "\n" not in str(caught.value)
    assert "YRD_BATCH_MAX: " in str(caught.value) and "YRD_METRICS_PORT: " in str(caught.value)


COMMANDS = [
    ["worker"], ["simulate", "--duration", "1"], ["alerts", "--limit", "1"], ["topics"],
    ["zones", "delete", "some-zone"], ["zones", "publish", "README.md"], ["settings"], ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_stops_on_an_invalid_setting_with_one_line(command):
    env = clean_env(YRD_TOPIC_PARTITIONS="abc", REDIS_URL="http://u:hunter2@cache/0",
                    YRD_STATE_DIR="/nonexistent/must-not-be-created")
    out = run([*CLI, *command], env)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == (
        "error: REDIS_URL: must start with redis://, rediss:// (TLS) or unix://; "
        "YRD_TOPIC_PARTITIONS: input should be a valid integer, unable to parse string as an integer\n")
    assert not Path("/nonexistent/must-not-be-created").exists()  # the demo started nothing


def test_help_and_schemas_need_no_valid_settings():
    env = clean_env(YRD_TOPIC_PARTITIONS="abc")
    assert run([*CLI, "worker", "--help"], env).returncode == 0
    assert run([*CLI, "schemas", "--check"], env).returncode == 0


def test_faust_worker_command_fails_in_one_line():
    """``faust -A agents.worker worker`` reads the settings when it imports the app."""
    env = clean_env(YRD_TOPIC_PARTITIONS="abc", **SECRET_ENV)
    out = run([sys.executable, "-m", "faust", "-A", "agents.worker", "worker"], env)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: YRD_TOPIC_PARTITIONS: input should be a valid integer, unable to parse string "
        "as an integer"), out.stderr[-3000:]


# --- commands' output -----------------------------------------------------------------------


def test_settings_command_masks_every_secret():
    out = run([*CLI, "settings"], clean_env(**SECRET_ENV))
    assert out.returncode == 0, out.stderr
    assert '"redis_url": "rediss://desk:****@cache.example:6380/0?password=****&ssl_password=****"' in out.stdout
    assert_no_secret(out.stdout + out.stderr)


def test_services_script_never_prints_a_given_password(tmp_path):
    """``up`` with a REDIS_URL from the environment neither repeats nor logs its password."""
    script = [sys.executable, str(REPO / "deploy/local/services.py")]
    env = clean_env(KAFKA_BOOTSTRAP="broker.example:9093", REDIS_URL=SECRET_ENV["REDIS_URL"])
    up = run([*script, "up", "--state-dir", str(tmp_path)], env)
    assert up.returncode == 0, up.stderr
    assert "using rediss://desk:****@cache.example:6380/0?password=****&ssl_password=****" in up.stderr
    assert "# REDIS_URL: kept as set in the environment" in up.stdout
    status = run([*script, "status", "--state-dir", str(tmp_path)], env)
    assert "Redis: external (REDIS_URL=rediss://desk:****@" in status.stdout
    assert_no_secret(up.stdout + up.stderr + status.stdout + status.stderr)


def test_export_lines_read_passwords_from_their_files(tmp_path):
    services = local_services()
    secret_file = tmp_path / "worker.password"
    secret_file.write_text("0123abcd\n")
    password = services.read_password(secret_file)
    env = {"REDIS_URL": f"rediss://worker:{password}@127.0.0.1:6380/0?ssl_ca_certs=/a b/ca.pem&x=$y",
           "YRD_KAFKA_SASL_PASSWORD": password, "KAFKA_BOOTSTRAP": "127.0.0.1:9093"}
    lines = services.shell_exports(env)
    assert all(password not in line for line in lines)
    assert f"$(cat {secret_file})" in lines[0]
    shell = "\n".join(lines) + '\nprintf "%s\\n%s\\n%s" "$REDIS_URL" "$YRD_KAFKA_SASL_PASSWORD" "$KAFKA_BOOTSTRAP"'
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True,
                         env=clean_env())
    assert out.stdout.split("\n") == [env["REDIS_URL"], password, env["KAFKA_BOOTSTRAP"]]
    assert services.redact(f"x {password} redis://u:pw@h/0?password=p") == (
        "x **** redis://u:****@h/0?password=****")
    assert password not in str(services.ServiceError(f"failed with {password}"))


# --- the certificates of up --secure ----------------------------------------------------------


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_secure_material_serves_tls_that_kafka_options_trust(tmp_path, monkeypatch):
    services = local_services()
    cfg = services.make_config(tmp_path, 1, 2, secure=True)
    services.make_secure_material(cfg)
    assert oct(cfg.secure_dir.stat().st_mode & 0o777) == "0o700"
    for user in services.KAFKA_USERS:
        assert oct(cfg.password_file(user).stat().st_mode & 0o777) == "0o600"
        assert len(cfg.password_file(user).read_text().strip()) >= 32
    assert cfg.server_key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8 for Kafka
    keystore = cfg.kafka_keystore.read_text()
    assert "PRIVATE KEY" in keystore and "CERTIFICATE" in keystore

    # A TLS server with the server certificate, on 127.0.0.1 ...
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cfg.server_cert, cfg.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass  # the client without the CA hangs up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    # ... which the settings' SSL context trusts through YRD_KAFKA_SSL_CAFILE, hostname checked.
    monkeypatch.setenv("YRD_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("YRD_KAFKA_SSL_CAFILE", str(cfg.ca_file))
    client_ctx = Settings().kafka_options()["ssl_context"]
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
    # without the CA file, the same server is not trusted
    monkeypatch.delenv("YRD_KAFKA_SSL_CAFILE")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            Settings().kafka_options()["ssl_context"].wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(5)
    listener.close()


def test_kafka_acls_give_each_user_only_its_part():
    services = local_services()
    by_user: dict[str, set] = {}
    for resource, name, pattern, principal, operation in services.kafka_acls():
        by_user.setdefault(principal, set()).add((resource, name, pattern, operation))
    S = services
    assert by_user["User:carrier"] == {(S.TOPIC, "yrd.pings", S.LITERAL, S.WRITE),
                                       (S.TOPIC, "yrd.pings", S.LITERAL, S.DESCRIBE)}
    assert by_user["User:police"] == {(S.TOPIC, "yrd.alerts", S.LITERAL, S.READ),
                                      (S.TOPIC, "yrd.alerts", S.LITERAL, S.DESCRIBE),
                                      (S.GROUP, "police-", S.PREFIXED, S.READ)}
    worker = by_user["User:worker"]
    assert (S.GROUP, "yrd-hazmat", S.PREFIXED, S.READ) in worker
    for prefix in ("yrd.", "yrd-hazmat-"):
        assert {(S.TOPIC, prefix, S.PREFIXED, op) for op in (S.READ, S.WRITE, S.CREATE)} <= worker
    assert set(by_user) == {"User:carrier", "User:police", "User:worker"}
