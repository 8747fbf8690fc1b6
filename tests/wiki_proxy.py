"""A wiki's reverse proxy for tests: Debian's nginx on loopback, signing readers in (HTTP Basic standing in for the
wiki's SSO) and passing docbot who they are in ``Remote-User`` / ``Remote-Groups``, the configuration docs/access.md
shows; ``/guest/`` is a location without sign-in (a wiki's public pages: the user and groups headers set empty, so
nginx sends neither). nginx connects to docbot from 127.0.0.2 (``proxy_bind``), so docbot can trust that address
alone while a test's own requests from 127.0.0.1 are a direct caller whose headers must be ignored.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from live import free_port, stop_process, wait_http

#: The address nginx connects to docbot from: the one DOCBOT_TRUSTED_PROXIES names.
PROXY_ADDRESS = "127.0.0.2"

_CONF = """
worker_processes 1;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    map $remote_user $wiki_groups {{
        default "";
{groups}
    }}
    server {{
        listen 127.0.0.1:{port};
        auth_basic "wiki";
        auth_basic_user_file {root}/htpasswd;
        proxy_bind {proxy_address};
        proxy_http_version 1.1;
        proxy_buffering off;
        proxy_read_timeout 300s;
        location / {{
            proxy_pass {upstream};
{signed_in}
        }}
        location /guest/ {{
            auth_basic off;
            proxy_pass {upstream}/;
{guest}
        }}
    }}
}}
"""
#: The headers the proxy sets on every request to docbot (a location's own ``proxy_set_header`` replaces every one
#: inherited, so each location lists them all).
_HEADERS = """\
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Remote-User {user};
            proxy_set_header Remote-Groups {groups};
            proxy_set_header Authorization "";"""


@dataclass
class WikiProxy:
    url: str
    root: Path


@contextmanager
def wiki_proxy(
    workdir: Path, upstream: str, passwords: Mapping[str, str], groups: Mapping[str, str]
) -> Iterator[WikiProxy]:
    """nginx on a free loopback port in front of ``upstream``; ``passwords`` user → password, ``groups`` user →
    comma-separated wiki groups."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = workdir / "nginx"
    root.mkdir(parents=True)
    (root / "htpasswd").write_text("".join(f"{user}:{{PLAIN}}{pw}\n" for user, pw in passwords.items()))
    port = free_port()
    mapped = "\n".join(f'        "{user}" "{listed}";' for user, listed in groups.items())
    # a guest's $remote_user would be whatever their own unchecked Authorization header names: set it empty
    signed_in, guest = (
        _HEADERS.format(user="$remote_user", groups="$wiki_groups"),
        _HEADERS.format(user='""', groups='""'),
    )
    conf = _CONF.format(
        root=root,
        port=port,
        upstream=upstream,
        proxy_address=PROXY_ADDRESS,
        groups=mapped,
        signed_in=signed_in,
        guest=guest,
    )
    (root / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/health", 30, process)
        yield WikiProxy(url, root)
    finally:
        stop_process(process)
