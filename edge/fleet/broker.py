"""The broker connection: settings from the URL, credentials and CA file, and a paho-mqtt client built from them (paho is imported only here, only when a broker is used)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edge.addresses import PASSWORD_ENV, USERNAME_ENV, parse_broker_url
from edge.fleet.topics import OFFLINE
from edge.paths import read_secret_file, warn_if_others_can_read

WINDOW = 64  # publishes awaiting the broker's acknowledgement at once


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool = False
    ca_file: str = ""
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    def describe(self) -> str:  # for messages: never the credentials
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def read_credentials(path: str | Path) -> dict[str, str]:
    """NAME=VALUE lines (the systemd EnvironmentFile format): FER_MQTT_USERNAME, FER_MQTT_PASSWORD."""
    path = Path(path)
    text = read_secret_file(path, "mqtt_credentials_file")
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() not in (USERNAME_ENV, PASSWORD_ENV):
            raise ValueError(f"{path}, line {number}: expected {USERNAME_ENV}=... or {PASSWORD_ENV}=...")
        values[name.strip()] = value.strip().strip("'\"")
    warn_if_others_can_read(path)
    return values


def broker_settings(url: str, ca_file: str = "", credentials_file: str = "", environ=None) -> BrokerSettings:
    """The URL plus credentials from the environment, else from the credentials file (never from the TOML)."""
    host, port, tls = parse_broker_url(url)
    if ca_file and not tls:
        raise ValueError(f"mqtt_ca_file {ca_file}: a CA file needs an mqtts:// broker URL")
    if ca_file and not Path(ca_file).is_file():
        raise ValueError(f"mqtt_ca_file {ca_file}: no such file")
    if ca_file:
        check_ca_file(ca_file)
    environ = os.environ if environ is None else environ
    secrets = {name: environ[name] for name in (USERNAME_ENV, PASSWORD_ENV) if environ.get(name)}
    if not secrets and credentials_file:
        secrets = read_credentials(credentials_file)
    if secrets.get(PASSWORD_ENV) and not secrets.get(USERNAME_ENV):
        raise ValueError(f"{PASSWORD_ENV} is set but {USERNAME_ENV} is not")
    return BrokerSettings(host, port, tls, ca_file, secrets.get(USERNAME_ENV, ""), secrets.get(PASSWORD_ENV, ""))


def check_ca_file(ca_file: str) -> None:
    """Load it the way the TLS connection will: a file that holds no PEM certificate is an error naming it."""
    import ssl

    try:
        ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError, ValueError) as error:
        why = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise ValueError(f"mqtt_ca_file {ca_file}: not a CA certificate file (PEM) OpenSSL can load ({why})") from None


def new_client(settings: BrokerSettings, client_id: str, will_topic: str | None = None):
    """A paho-mqtt 2.x client (MQTT 3.1.1) with TLS, credentials and the last will set; not yet connected."""
    try:
        import paho.mqtt.client as paho
    except ImportError:
        raise ImportError("MQTT needs paho-mqtt 2.x: pip install 'fer-edge[mqtt]' (or pip install paho-mqtt)") from None
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file or None)
    if will_topic:
        client.will_set(will_topic, OFFLINE, qos=1, retain=True)
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    return client


def reason_text(reason_code) -> str:
    return str(getattr(reason_code, "getName", lambda: reason_code)())
