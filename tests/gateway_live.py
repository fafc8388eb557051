"""Run inside a private mount and network namespace (tests/test_gateway.py starts it): the
rendered gateway's nginx for real, with a stub backend that also verifies tokens, and a fixed
list of requests on the namespace's own loopback. Prints what happened as JSON.

    gateway_live.py NGINX REQUESTS.json

The namespace has /etc/nginx (the rendered files), /etc/hosts (the upstreams' names on
loopback addresses), the CRS where the configuration includes it, and /var/log/modsecurity.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BACKEND = ("127.0.0.2", 8000)  # backend-api in /etc/hosts
GOOD_TOKEN = "Bearer good-token"
seen: list[dict[str, Any]] = []  # what reached the backend (not the verifier)


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, each answer waits for a
        # delayed acknowledgement.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/v1/auth/verify":  # the verifier: only the token decides
            if self.headers.get("Authorization") == GOOD_TOKEN:
                self.send_response(200)
                self.send_header("X-Auth-User", "alice")
            else:
                self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        seen.append(
            {
                "path": self.path,
                "identity": self.headers.get_all("X-Auth-User") or [],
                "upgrade": self.headers.get("Upgrade"),
            }
        )
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def main() -> None:
    nginx, requests_file = sys.argv[1], sys.argv[2]
    requests = json.loads(open(requests_file).read())
    # nginx's pid and temporary files, private to this namespace.
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/tmp"], check=True)
    server = ThreadingHTTPServer(BACKEND, Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proc = subprocess.Popen(
        [nginx, "-p", "/etc/nginx/", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = []
    try:
        _wait_for(8443, time.monotonic() + 20)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        for request in requests:
            statuses = []
            before, started = len(seen), time.monotonic()
            # One connection per request list entry: a burst is as fast as keep-alive makes it.
            conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=context, timeout=10)
            for _ in range(request.get("repeat", 1)):
                body = b"x" * request.get("body", 0) if request.get("body") else None
                headers = {"Host": "api.imageflow.com", **request.get("headers", {})}
                conn.request(request.get("method", "GET"), request["path"], body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=context, timeout=10)
            conn.close()
            results.append(
                {
                    "name": request["name"],
                    "statuses": statuses,
                    "seconds": time.monotonic() - started,
                    "reached": seen[before:] if request.get("repeat", 1) == 1 else [],
                }
            )
    finally:
        proc.terminate()
        _, errors = proc.communicate(timeout=20)
        server.shutdown()
    try:
        audit = open("/var/log/modsecurity/audit.log").read()
    except FileNotFoundError:
        audit = ""
    print(json.dumps({"results": results, "audit": audit, "errors": errors}))


if __name__ == "__main__":
    main()
