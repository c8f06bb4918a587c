"""`python -m ingest app`: start the Streamlit app, with its sign-in secrets in place.

Sign-in (`[access]` in pipeline.toml, dashboard/access/login.py) goes through
`st.login`, which reads an `[auth]` section from Streamlit's secrets. An
operator can provide it in two ways:

- a `.streamlit/secrets.toml` beside streamlit_app.py (git-ignored), written by hand;
- environment variables (systemd's EnvironmentFile, deploy/datadesk.env.example):
  OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_METADATA_URL and AUTH_COOKIE_SECRET.
  Streamlit reads secrets only from files, so this launcher writes them to a
  file readable by the app's user alone (mode 0600) beside the app's state
  (`[app] state_path`'s folder, data/ in the demo) and points Streamlit at it
  with `--secrets.files`. The redirect address is `[app] public_url` +
  "/oauth2callback", so it always matches what people open.

Without `[access]` nothing is needed (the app runs open). With it and neither
source, the launcher refuses to start and names what to set — an app that
starts but cannot sign anybody in would look like an outage.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from ingest.config import ConfigError, PipelineConfig, load_config, resolve_config_path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"
SECRETS_NAME = "streamlit_secrets.toml"  # what the launcher writes (never committed: data/ is ignored)

# [auth] key → environment variable
AUTH_ENV = {
    "client_id": "OIDC_CLIENT_ID",
    "client_secret": "OIDC_CLIENT_SECRET",
    "server_metadata_url": "OIDC_METADATA_URL",
    "cookie_secret": "AUTH_COOKIE_SECRET",
}
CALLBACK_PATH = "/oauth2callback"


class SecretsMissing(ConfigError):
    """[access] is configured but st.login would find no [auth] secrets."""


def _missing_message(config: PipelineConfig, detail: str) -> str:
    names = ", ".join(AUTH_ENV.values())
    return (f"{config.path}: [access] turns sign-in on, but {detail} — set {names} in the environment "
            f"(e.g. /etc/datadesk/datadesk.env), or write an [auth] section (redirect_uri, cookie_secret, client_id, "
            f"client_secret, server_metadata_url) into {ROOT / '.streamlit' / 'secrets.toml'} (docs/operations.md, \"Sign-in\")")


def auth_from_env(config: PipelineConfig, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The [auth] values from the environment; None when none is set, an error when only some are."""
    found = {key: environ[var] for key, var in AUTH_ENV.items() if environ.get(var)}
    if not found:
        return None
    missing = [var for key, var in AUTH_ENV.items() if key not in found]
    if missing:
        raise SecretsMissing(_missing_message(config, f"{', '.join(missing)} is not set (the others are)"))
    if len(found["cookie_secret"]) < 32:
        raise SecretsMissing(f"AUTH_COOKIE_SECRET is shorter than 32 characters — make one with "
                             f"python3 -c \"import secrets; print(secrets.token_hex(32))\"")
    app_url = config.app.public_url if config.app else "http://localhost:8501"
    return {"redirect_uri": app_url.rstrip("/") + CALLBACK_PATH, **found}


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def secrets_toml(auth: Mapping[str, str], provider: str | None) -> str:
    """The [auth] section st.login reads; the provider's keys go to [auth.<provider>] when one is named."""
    shared = ("redirect_uri", "cookie_secret")
    lines = ["# Written by `python -m ingest app` from the environment; rewritten at every start. Do not edit.", "[auth]"]
    lines += [f"{k} = {_toml_string(auth[k])}" for k in shared]
    if provider:
        lines += ["", f"[auth.{provider}]"]
    lines += [f"{k} = {_toml_string(v)}" for k, v in auth.items() if k not in shared]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write `text` so only this user can read it (0600 from the first byte, not chmod afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _has_auth(path: Path) -> bool:
    import tomllib

    try:
        with path.open("rb") as f:
            return isinstance(tomllib.load(f).get("auth"), dict)
    except (OSError, tomllib.TOMLDecodeError):
        return False


def default_secrets_files() -> tuple[Path, ...]:
    """Where Streamlit itself looks for secrets when not told otherwise (the project's, then the user's)."""
    return ROOT / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"


def secret_args(config: PipelineConfig, environ: Mapping[str, str],
                files: Sequence[Path] | None = None) -> list[str]:
    """Extra `streamlit run` arguments that give the app its sign-in secrets ([] when none are needed).

    Raises SecretsMissing (a ConfigError: the CLI prints it and exits 2) when
    [access] is on and neither the environment nor a secrets file has them.
    """
    if config.access is None:
        return []
    auth = auth_from_env(config, environ)
    if auth is not None:
        state_dir = (config.app.state_path if config.app else Path("data/app_state.sqlite")).parent
        path = (state_dir / SECRETS_NAME).resolve()
        write_private(path, secrets_toml(auth, config.access.provider))
        return ["--secrets.files", str(path)]
    for candidate in default_secrets_files() if files is None else files:
        if _has_auth(candidate):
            return []
    raise SecretsMissing(_missing_message(config, "no sign-in secrets were found"))


def streamlit_argv(config: PipelineConfig, port: int, address: str, environ: Mapping[str, str],
                   extra: list[str] | None = None) -> list[str]:
    """The full `python -m streamlit run` command line for this configuration."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", *secret_args(config, environ), *(extra or [])]


def run_app(config_path: str | None, port: int, address: str) -> int:
    """Replace this process by Streamlit (systemd then supervises Streamlit itself)."""
    path = resolve_config_path(config_path).resolve()
    config = load_config(path, needs=("warehouse",))
    argv = streamlit_argv(config, port, address, os.environ)
    env = {**os.environ, "PIPELINE_CONFIG": str(path)}
    os.execve(sys.executable, argv, env)
    return 0  # not reached
