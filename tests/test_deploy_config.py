"""The reference deployment's files (deploy/, docs/deploy.md): nginx accepts its config, every docbot setting the
env example names exists and takes its value, and the units start the commands docbot and chromadb install.

``nginx -t`` needs Debian's nginx (`make test` installs it, like Chromium and PostgreSQL); it is not mocked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from live import ROOT

from bot.access.policy import anonymous_role, check_exposure, parse_keys, parse_users
from bot.config import Settings

DEPLOY = ROOT / "deploy"
#: Absolute paths of the real install, and where the test puts them instead.
NGINX_PATHS = {
    "/etc/docbot/tls/docs.example.com.crt": "tls.crt",
    "/etc/docbot/tls/docs.example.com.key": "tls.key",
    "/run/nginx.pid": "nginx.pid",
    "/var/log/nginx/": "",
}


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "docbot.env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def nginx_binary() -> str:
    path = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if path is None:
        pytest.fail("Debian's nginx is not installed: apt-get install nginx (make test does)")
    return path


def self_signed(folder: Path) -> None:
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    request += ["-subj", "/CN=docs.example.com"]
    subprocess.run(
        [*request, "-keyout", str(folder / "tls.key"), "-out", str(folder / "tls.crt")],
        check=True,
        capture_output=True,
    )


def local_nginx_conf(folder: Path, replicas: list[str] | None = None, ports: tuple[int, int] | None = None) -> Path:
    """deploy/nginx.conf with its certificate, pid and log paths moved into ``folder`` (a self-signed certificate
    made there); with ``replicas`` (host:port) in place of the two replica addresses and ``ports`` (http, https) in
    place of 80 and 443, so that it can run on loopback. Nothing else changed."""
    self_signed(folder)
    text = (DEPLOY / "nginx.conf").read_text()
    swaps = {real: f"{folder}/{local}" for real, local in NGINX_PATHS.items()}
    if replicas is not None:
        swaps |= dict(zip(("10.0.0.11:7860", "10.0.0.12:7860"), replicas, strict=True))
    if ports is not None:
        swaps |= {"listen 80;": f"listen 127.0.0.1:{ports[0]};", "listen 443 ": f"listen 127.0.0.1:{ports[1]} "}
    for real, local in swaps.items():
        assert real in text, f"deploy/nginx.conf no longer has {real!r}: update tests/test_deploy_config.py"
        text = text.replace(real, local)
    conf = folder / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.mark.server
def test_nginx_accepts_the_reference_config(tmp_path: Path) -> None:
    conf = local_nginx_conf(tmp_path)
    checked = subprocess.run(
        [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_nginx_config_streams_and_forwards_what_docbot_reads() -> None:
    """What docs/deploy.md promises of the config: SSE unbuffered, the headers docbot's edge reads, both replicas
    in both upstreams, the page sticky and the API spread."""
    text = (DEPLOY / "nginx.conf").read_text()
    directives = {line.split("#")[0].strip() for line in text.splitlines()}
    for needed in (
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "hash $remote_addr consistent;",
        "least_conn;",
    ):
        assert needed in directives, needed
    upstreams = dict(re.findall(r"upstream (\w+) \{(.*?)\n    \}", text, re.S))
    assert set(upstreams) == {"docbot_page", "docbot_api"}
    for body in upstreams.values():
        assert re.findall(r"server (\S+?):7860", body) == ["10.0.0.11", "10.0.0.12"]
    env = env_example()
    assert env["DOCBOT_TRUSTED_PROXIES"] in text.splitlines()[1], "the proxy's address in the header comment"


def test_every_setting_the_env_example_names_exists_and_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_example()
    fields = {name.upper() for name in Settings.model_fields}
    unknown = [name for name in env if name.startswith("DOCBOT_") and name.removeprefix("DOCBOT_") not in fields]
    assert not unknown, f"deploy/docbot.env.example names settings docbot does not have: {unknown}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.chroma_url == env["DOCBOT_CHROMA_URL"]
    assert str(settings.data_dir) == env["DOCBOT_DATA_DIR"]
    check_exposure(settings)  # a non-loopback host with users and keys: accepted
    assert anonymous_role(settings) is None
    assert parse_users(settings.users) and parse_keys(settings.api_keys)


def test_units_start_what_docbot_installs() -> None:
    docbot = (DEPLOY / "systemd" / "docbot.service").read_text()
    assert "ExecStart=/opt/docbot/.venv/bin/docbot serve" in docbot
    assert "EnvironmentFile=/etc/docbot/docbot.env" in docbot
    env = env_example()
    assert f"ReadWritePaths={env['DOCBOT_DATA_DIR']}" in docbot
    chroma = (DEPLOY / "systemd" / "chroma.service").read_text()
    host, port = re.search(r"chroma run --host (\S+) --port (\d+)", chroma).groups()  # type: ignore[union-attr]
    assert env["DOCBOT_CHROMA_URL"] == f"http://{host}:{port}"
