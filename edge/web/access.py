"""Who may watch: the live view token (from a file or the environment, never logged) and its checks."""

from __future__ import annotations

import os
from pathlib import Path

from edge.addresses import is_loopback, parse_web_address
from edge.paths import read_secret_file, warn_if_others_can_read

TOKEN_ENV = "FER_WEB_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "fer_edge_view"


def read_token_file(path: str | Path) -> str:
    """The token alone, or a FER_WEB_TOKEN=... line (the systemd EnvironmentFile format)."""
    path = Path(path)
    text = read_secret_file(path, "web_token_file")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    named = [line.partition("=")[2].strip().strip("'\"") for line in lines if line.partition("=")[0].strip() == TOKEN_ENV]
    if named:
        token = named[-1]
    elif len(lines) == 1 and "=" not in lines[0]:
        token = lines[0]
    else:
        raise ValueError(f"web_token_file {path}: expected the token alone on one line, or a {TOKEN_ENV}=... line")
    warn_if_others_can_read(path)
    return token


def web_token(config, environ=None) -> str:
    """The live view's token: FER_WEB_TOKEN, else the file web_token_file names; "" when neither. An address
    other than loopback without one is refused: the page shows what the camera sees."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    source = TOKEN_ENV
    if not token and config.web_token_file:
        token, source = read_token_file(config.web_token_file), f"web_token_file {config.web_token_file}"
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"--web {config.web}: {source}: the live view's token must be at least {MIN_TOKEN_LENGTH} characters "
            "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    host, _ = parse_web_address(config.web)
    if not token and not is_loopback(host):
        raise ValueError(
            f"--web {config.web}: serving the camera on an address other than loopback needs an access token; set "
            f"{TOKEN_ENV} or --web-token-file (run.web_token_file), or bind 127.0.0.1 and reach it with "
            "`ssh -L 8080:127.0.0.1:8080 pi@HOST`"
        )
    return token
