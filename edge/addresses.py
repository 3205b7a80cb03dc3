"""Where things are reached, checked before anything opens: the live view address, the broker URL, MQTT topic words."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# Credentials come from these variables (or a file), never from the URL: see edge.fleet.broker.
USERNAME_ENV, PASSWORD_ENV = "FER_MQTT_USERNAME", "FER_MQTT_PASSWORD"
TOPIC_WORD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # no '/', '+', '#': safe as one topic level


def check_topic_word(value: str, name: str) -> str:
    if not TOPIC_WORD.match(value):
        raise ValueError(f"{name} = {value!r}: use 1-64 letters, digits, '.', '_' or '-' (it becomes an MQTT topic level)")
    return value


def check_topic_prefix(value: str, name: str) -> str:
    for part in value.split("/"):
        check_topic_word(part, name)
    return value


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """mqtt://host[:port] (1883) or mqtts://host[:port] (8883, TLS) -> (host, port, tls).
    Errors never repeat the URL past its host: a password typed where the port goes must not reach a log."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[" (urllib: "Invalid IPv6 URL"); what follows may be a secret
        scheme = url.partition("://")[0] if url.partition("://")[0] in ("mqtt", "mqtts") else "mqtt"
        raise ValueError(f"mqtt = {scheme}://...: not a URL urllib can read (an unclosed '[' of an IPv6 host?); "
                         "expected mqtt://host[:port] or mqtt://[IPv6]:port (the URL is not shown)") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("mqtt: the broker URL must start with mqtt:// or mqtts://")
    if "@" in parts.netloc:
        raise ValueError(
            "mqtt: the broker URL must not hold credentials (they would land in the config and the log); "
            f"set {USERNAME_ENV} and {PASSWORD_ENV} or give mqtt_credentials_file"
        )
    try:
        hostname = parts.hostname
    except ValueError:
        hostname = None
    shown = f"{parts.scheme}://{hostname or ''}"  # what an error may show of the URL
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"mqtt = {shown}:...: the port must be a number from 1 to 65535 (the rest of the URL is not shown)") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"mqtt = {shown}...: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


# -- address and token ---------------------------------------------------------------------------------
def parse_web_address(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT -> (host, port); port 0 picks a free one. ValueError names --web."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535 or any(c in host for c in "/@?#[] "):
        raise ValueError(f"--web (run.web) {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    if ":" in host or bracketed:
        try:
            if not bracketed:
                raise ValueError
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"--web (run.web) {text!r}: an IPv6 address goes in brackets, e.g. [::1]:8080") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Only loopback addresses (and the name localhost) count: any other name may reach the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
