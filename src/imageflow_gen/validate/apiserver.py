"""A real Kubernetes API server as a gate: every object is applied with a server-side dry run.

The schemas cannot see what the API server itself enforces: defaulting, validation code, the
CEL rules of CRDs, Pod Security admission. `LocalApiServer` starts etcd and kube-apiserver
(built by `tools/kube.sh` from the Go module proxy, at the version the cluster runs) on free
loopback ports, with a throwaway CA and token, installs the CRDs shipped in
`schemas/crds/upstream/`, and stops everything it started when the `with` block ends
(normally, on an exception, on Ctrl-C, or on SIGTERM). `KubeconfigProxy` reaches the user's
own cluster through `kubectl proxy` instead: only dry runs are sent there, nothing persists.

`dry_run` applies each object (server-side apply, `dryRun=All`, `fieldValidation=Strict`) and
returns what the server refused, and every warning it gave (Pod Security's among them).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import ImageflowError, Location, Problem
from ..yamlio import parse_all

FIELD_MANAGER = "imageflow-gen"
SERVICE_CIDR = "10.43.0.0/16"  # K3s' default service range
START_TIMEOUT = 90.0


class ApiServerError(ImageflowError):
    """The server could not be started or reached: exit 2, with what it said."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__([Problem(Location("--api-server"), "", message)])


@dataclass(frozen=True)
class Finding:
    """What the server said about one object: a refusal, or a warning it gave accepting it."""

    obj: dict[str, Any]
    message: str
    warning: bool = False


@dataclass
class ApiClient:
    """Plain HTTP(S) calls with a bearer token; no client library."""

    base: str
    token: str | None = None
    cafile: str | None = None
    _resources: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)
    _context: ssl.SSLContext | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.base.startswith("https"):  # loaded once: every call trusts the same CA
            self._context = ssl.create_default_context(cafile=self.cafile)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any, list[str]]:
        """(status, parsed body, warnings) of one call."""
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60, context=self._context) as response:
                return response.status, _json(response.read()), _warnings(response.headers.get_all("Warning"))
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read()), _warnings(error.headers.get_all("Warning"))

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the server's discovery."""
        if api_version not in self._resources:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            status, body, _ = self.request("GET", path)
            if status != 200:
                raise KeyError(f"the server does not serve {api_version}")
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in body.get("resources", []) if "/" not in r["name"]
            }
        try:
            return self._resources[api_version][kind]
        except KeyError:
            raise KeyError(f"the server does not serve {kind} in {api_version}") from None

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> tuple[int, Any, list[str]]:
        """Server-side apply of one object, forced, with strict field validation; `dry_run`
        persists nothing. KeyError when the server does not serve its kind."""
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            query = {"dryRun": "All", **query}
        return self.request("PATCH", self.path(obj), obj, "application/apply-patch+yaml", query)

    def path(self, obj: dict[str, Any], namespace: str | None = None) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        ns = namespace or obj["metadata"].get("namespace") or "default"
        return root + (f"/namespaces/{ns}" if namespaced else "") + f"/{plural}/{obj['metadata']['name']}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {"message": raw.decode(errors="replace")}


def _warnings(headers: list[str] | None) -> list[str]:
    """RFC 7234 warning headers (`299 - "text"`) to their text."""
    result = []
    for header in headers or []:
        match = re.match(r'^\d{3} \S+ "(.*)"', header)
        result.append(match.group(1).replace('\\"', '"') if match else header)
    return result


# ---- the dry run ------------------------------------------------------------------------------


def dry_run(client: ApiClient, docs: list[dict[str, Any]], *, bootstrap: bool) -> list[Finding]:
    """Apply every object with a server-side dry run; what the server refused or warned about.

    With `bootstrap` (a throwaway server only), the output's Namespaces are created for real
    first, with every other namespace the objects use and a default ServiceAccount in each
    (no controller-manager runs there): a dry run cannot create what the other objects need.
    """
    if bootstrap:
        _bootstrap(client, docs)
    findings = []
    for obj in docs:
        try:
            status, body, warnings = client.apply(obj, dry_run=True)
        except KeyError as error:
            findings.append(Finding(obj, str(error.args[0])))
            continue
        message = body.get("message") or f"HTTP {status}"
        missing = re.fullmatch(r'namespaces "([^"]+)" not found', message) if status == 404 else None
        if missing and not bootstrap:
            # A dry run cannot create the namespace the object needs on the user's cluster.
            note = f"not checked: namespace {missing.group(1)} does not exist there yet (apply the Namespaces first)"
            findings.append(Finding(obj, note, warning=True))
        elif status >= 300:
            findings.append(Finding(obj, message))
        findings += [Finding(obj, warning, warning=True) for warning in warnings]
    return findings


def _bootstrap(client: ApiClient, docs: list[dict[str, Any]]) -> None:
    namespaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    used = {d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")}
    for name in sorted(set(namespaces) | used):
        obj = namespaces.get(name) or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status, body, _ = client.request("POST", "/api/v1/namespaces", obj)
        if status not in (201, 409):
            raise ApiServerError(f"creating namespace {name}: {body.get('message')}")
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        status, body, _ = client.request("POST", f"/api/v1/namespaces/{name}/serviceaccounts", account)
        if status not in (201, 409):
            raise ApiServerError(f"creating the default ServiceAccount of {name}: {body.get('message')}")


# ---- a throwaway local server ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalApiServer:
    """etcd and kube-apiserver on loopback, with the CRDs installed; a context manager."""

    binaries: dict[str, str]  # etcd, kube-apiserver, kube-pki -> path
    crd_files: list[Path]
    apiserver_args: tuple[str, ...] = ()  # more flags for kube-apiserver
    client: ApiClient = field(init=False)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)
    _names: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    _dir: Path | None = field(default=None, init=False)
    _previous: Any = field(default=None, init=False)  # the SIGTERM handler to restore

    def __enter__(self) -> LocalApiServer:
        if _main_thread():
            self._previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if _main_thread() and self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def pid(self, name: str) -> int:
        """The process id of one component (as `_spawn` named it)."""
        return self._names[name].pid

    def exited(self) -> list[str]:
        """The components that have stopped on their own, each with the end of its log."""
        return [f"{name} exited:\n{self._log_tail(name)}" for name, p in self._names.items() if p.poll() is not None]

    def _start(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="imageflow-apiserver-"))
        self._dir = work
        pki = work / "pki"
        pki.mkdir()
        _check([self.binaries["kube-pki"], str(pki)], "kube-pki")
        token = secrets.token_hex(24)
        tokens = work / "tokens.csv"
        tokens.write_text(f'{token},{FIELD_MANAGER},{FIELD_MANAGER},"system:masters"\n', encoding="utf-8")
        tokens.chmod(0o600)
        client_port, peer_port, secure_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                self.binaries["etcd"],
                "--data-dir",
                str(work / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level",
                "error",
            ],
            work,
        )
        self._wait("etcd", lambda: _http_ok(f"{etcd_url}/health"))
        self._spawn(
            "kube-apiserver",
            [
                self.binaries["kube-apiserver"],
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={secure_port}",
                f"--cert-dir={work / 'certs'}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.key'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                *self.apiserver_args,
            ],
            work,
        )
        self.client = ApiClient(f"https://127.0.0.1:{secure_port}", token, str(pki / "ca.crt"))
        self._wait("kube-apiserver", lambda: self.client.request("GET", "/readyz")[0] == 200)
        install_crds(self.client, self.crd_files)
        self._started(work, pki)

    def _started(self, work: Path, pki: Path) -> None:
        """Called once the server is ready: what a subclass starts next."""

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for this server (its CA and token), for the components started next."""
        assert self.client.cafile is not None and self.client.token is not None
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {"server": self.client.base, "certificate-authority": self.client.cafile}}
            ],
            "users": [{"name": FIELD_MANAGER, "user": {"token": self.client.token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": FIELD_MANAGER}}],
            "current-context": "local",
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        path.chmod(0o600)
        return path

    def _spawn(self, name: str, argv: list[str], work: Path, env: dict[str, str] | None = None) -> None:
        log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            # A session of its own: a terminal's Ctrl-C reaches us, and we stop it.
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        finally:
            log.close()
        self._procs.append(proc)
        self._names[name] = proc

    def _wait(self, name: str, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                raise ApiServerError(f"{name} exited while starting:\n{self._log_tail(name)}")
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        raise ApiServerError(f"{name} not ready after {START_TIMEOUT:.0f} s:\n{self._log_tail(name)}")

    def _log_tail(self, name: str) -> str:
        if self._dir is None:
            return ""
        log = self._dir / f"{name}.log"
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
        return "\n".join(lines[-15:])

    def stop(self) -> None:
        """Stop what was started (newest first), then remove its files; safe to call twice."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
        self._procs.clear()
        self._names.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with` block, which stops the servers


def _check(argv: list[str], name: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ApiServerError(f"{name} failed: {proc.stderr.strip()}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def install_crds(client: ApiClient, files: list[Path]) -> None:
    """Create each CRD and wait until the server serves it."""
    names = []
    for path in files:
        for crd in parse_all(path.read_text(encoding="utf-8")):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            status, body, _ = client.request(
                "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json.loads(json.dumps(crd))
            )
            if status not in (201, 409):
                raise ApiServerError(f"installing CRD {path.name}: {body.get('message')}")
            names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + START_TIMEOUT
    for name in names:
        while True:
            _, body, _ = client.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in body.get("status", {}).get("conditions", [])}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise ApiServerError(f"CRD {name} not established after {START_TIMEOUT:.0f} s")
            time.sleep(0.2)


# ---- the user's cluster ------------------------------------------------------------------------


@contextmanager
def kubeconfig_proxy(kubectl: str, context: str | None) -> Iterator[ApiClient]:
    """The user's cluster through `kubectl proxy` (which does the authentication kubectl does)."""
    argv = [kubectl, "proxy", "--port=0", "--address=127.0.0.1"]
    if context:
        argv.append(f"--context={context}")
    # Its log goes to a file, never a pipe nobody reads (a full pipe would stall the proxy).
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if not match:
                proc.wait(timeout=15)
                log.seek(0)
                said = (line + log.read().decode(errors="replace")).strip()
                raise ApiServerError(f"kubectl proxy did not start: {said}")
            yield ApiClient(f"http://127.0.0.1:{match.group(1)}")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)
