"""The edge VM's nginx gateway (seed 8.0.4: load balancer, WAF, API gateway), derived once:
its locations in match order (each with its class of limits, body limit, authentication and
upstream), the backend's upstream, the WAF's ModSecurity configuration. The templates
(compose/api-gateway.conf.j2) only write it out.

What each control is, for the configuration's own header and the docs: `controls()` lists
exactly what the configuration implements (a test holds the header to the directives)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..model import Topology
from ..model.checks import verifiers
from ..model.edge import API_PREFIX, ApiGateway, GatewayRoute
from ..model.quantity import parse
from .workloads import vm_routes

HTTP_LISTEN = 8080  # the container's plain HTTP port (the redirect, the health check)
AUTH_LOCATION = "/_auth"  # the internal location of the verifier's subrequest
MODSECURITY_FILE = "/etc/nginx/modsecurity.conf"  # where the compose stack mounts it
AUDIT_DIR = "/var/log/modsecurity"  # the audit log's volume
AUDIT_LOG = f"{AUDIT_DIR}/audit.log"
EXCLUSION_IDS = 10000  # the first id of the per-route rules (CRS keeps 900000-999999)
# CRS 3.3 refuses to run (rule 901001) unless its setup says it was read; any value does.
CRS_SETUP_VERSION = 330


def audit_init(gw: ApiGateway) -> str:
    """The one-shot compose service that gives the audit log's volume to the gateway's user."""
    return f"{gw.name}-audit-init"


# The user the gateway's image runs nginx as (nginx's official images', which the CRS images
# keep): the owner of the audit log's volume.
GATEWAY_USER = "nginx"


@dataclass(frozen=True)
class Location:
    """An nginx location of the HTTPS server, in the order written."""

    modifier: str  # "=" (exact), "^~" (a prefix no regular expression overrides) or ""
    path: str
    comment: str
    zone: str  # api, upload or static: its rate zone
    burst: int
    body_limit: str
    auth: bool  # through the verifier; else the identity headers are removed
    kind: str  # backend, http, grpc or web
    upstream: str  # what proxy_pass / grpc_pass names
    timeout: str = "3600s"
    route: GatewayRoute | None = None  # the profile's route it is, if any


@dataclass(frozen=True)
class Upstream:
    name: str
    servers: list[str]  # host:port
    backups: list[str]
    keepalive: int


def header_variable(header: str) -> str:
    """The nginx variable an identity header is kept in between the subrequest and proxying."""
    return "$auth_" + header.lower().replace("-", "_")


def upstream_variable(header: str) -> str:
    """nginx's variable for a header of the subrequest's answer."""
    return "$upstream_http_" + header.lower().replace("-", "_")


def declared_routes(gw: ApiGateway) -> list[GatewayRoute]:
    """The profile's API routes in the order their locations and WAF rules are written."""
    return sorted(gw.routes, key=lambda r: (r.path, r.exact))


def locations(topo: Topology) -> list[Location]:
    """The HTTPS server's locations: the declared API routes, the API, the edge VM's workload
    routes, the web UI."""
    gw = topo.edge.api_gateway
    limits = gw.limits
    result = []
    for route in declared_routes(gw):
        rate = getattr(limits, route.limits)
        what = "public" if route.public else "authenticated"
        result.append(
            Location(
                "=" if route.exact else "^~",
                route.path,
                f"{route.path} ({route.limits}, {what})",
                route.limits,
                rate.burst,
                route.body_limit or rate.body_limit,
                not route.public,
                "backend",
                "http://backend_api",
                route=route,
            )
        )
    result.append(
        Location(
            "",
            API_PREFIX,
            "the API and its WebSockets",
            "api",
            limits.api.burst,
            limits.api.body_limit,
            True,
            "backend",
            "http://backend_api",
        )
    )
    for r in vm_routes(topo):
        result.append(
            Location(
                "^~",
                r.prefix,
                f"workload {r.workload} (its route in the profile)",
                "api",
                limits.api.burst,
                limits.api.body_limit,
                True,
                "grpc" if r.grpc else "http",
                f"grpc://{r.workload}:{r.port}" if r.grpc else f"http://{r.workload}:{r.port}",
                r.timeout,
            )
        )
    if "vm" in topo.edge.web_ui.runs_on:
        result.append(
            Location(
                "",
                "/",
                "the web UI's files (public: the sign-in page is among them)",
                "static",
                limits.static.burst,
                limits.static.body_limit,
                False,
                "web",
                "http://web_ui",
            )
        )
    return result


def verifier_address(topo: Topology) -> tuple[str, int] | None:
    """The verifier's compose name and port on the edge VM (None: not there; refused by the
    model's checks)."""
    verifier = topo.edge.api_gateway.auth.verifier
    target = verifiers(topo).get(verifier.service)
    port = target.port(verifier.port) if target is not None else None
    return (target.name, port.port) if target is not None and port is not None else None


def upstreams(topo: Topology) -> list[Upstream]:
    gw, backend = topo.edge.api_gateway, topo.edge.backend_api
    lb = gw.load_balancing
    result = [
        Upstream(
            "backend_api",
            [f"{backend.name}:{backend.port}"],
            [f"{b.address}:{b.port}" for b in lb.backups],
            lb.keepalive,
        )
    ]
    verifier = verifier_address(topo)
    if verifier is not None:
        result.append(Upstream("auth_verifier", [f"{verifier[0]}:{verifier[1]}"], [], 16))
    if "vm" in topo.edge.web_ui.runs_on:
        web = topo.edge.web_ui
        result.append(Upstream("web_ui", [f"{web.name}:{web.port}"], [], 8))
    return result


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"([0-9]+)([km]?)", size).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def _body_limit(gw: ApiGateway) -> int:
    """The largest body any route takes: ModSecurity's own limit (its connector counts a body
    it does not inspect too). nginx holds each route to its own limit first (413)."""
    sizes = [gw.limits.api.body_limit, gw.limits.static.body_limit]
    sizes += [r.body_limit or getattr(gw.limits, r.limits).body_limit for r in gw.routes]
    return max(_bytes(s) for s in sizes)


def _route_rule(index: int, route: GatewayRoute) -> str | None:
    """A route's exclusions as one rule before the CRS, on the path as nginx routes it
    (decoded, '/./', '//' and '/../' resolved): no other path gets them."""
    actions = [f"ctl:ruleRemoveById={e.rule}" for e in route.waf.exclusions]
    if not route.waf.inspect_body:
        actions.append("ctl:requestBodyAccess=Off")
    if not actions:
        return None
    operator = "@streq" if route.exact else "@beginsWith"
    return (
        f'SecRule REQUEST_FILENAME "{operator} {route.path}" '
        f'"id:{EXCLUSION_IDS + index},phase:1,pass,nolog,t:none,t:urlDecodeUni,t:normalizePath,{",".join(actions)}"'
    )


def modsecurity_config(topo: Topology) -> str:
    """The WAF's configuration: the engine (ModSecurity's recommended settings), the CRS's setup
    from the profile, the routes' exclusions, the CRS's rules."""
    gw = topo.edge.api_gateway
    waf = gw.waf
    body = _body_limit(gw)
    lines = [
        f"# ModSecurity for the API gateway on {topo.edge.vm}, generated by imageflow-gen.",
        f"# Mode: {waf.mode}; OWASP CRS at {waf.crs_path}, paranoia level {waf.paranoia_level}.",
        "SecRuleEngine " + ("On" if waf.mode == "blocking" else "DetectionOnly"),
        "SecRequestBodyAccess On",
        'SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" '
        '"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"',
        'SecRule REQUEST_HEADERS:Content-Type "^application/json" '
        '"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"',
        f"SecRequestBodyLimit {body}",
        f"SecRequestBodyNoFilesLimit {body}",
        "SecRequestBodyLimitAction Reject",
        'SecRule REQBODY_ERROR "!@eq 0" '
        "\"id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'\"",
        'SecRule MULTIPART_STRICT_ERROR "!@eq 0" '
        "\"id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation'\"",
        "SecPcreMatchLimit 1000",
        "SecPcreMatchLimitRecursion 1000",
        "SecResponseBodyAccess Off",
        "SecTmpDir /tmp/",
        "SecDataDir /tmp/",
        "SecArgumentSeparator &",
        "SecCookieFormat 0",
        "# The audit log: the transaction's addresses and time (A) and the rules that matched (H),",
        "# not its headers or bodies, which carry the clients' credentials.",
        "SecAuditEngine RelevantOnly",
        'SecAuditLogRelevantStatus "^(?:5|4(?!04))"',
        "SecAuditLogParts AHZ",
        "SecAuditLogType Serial",
        f"SecAuditLog {AUDIT_LOG}",
        "# The CRS's setup (what its crs-setup.conf must say).",
        'SecDefaultAction "phase:1,log,auditlog,pass"',
        'SecDefaultAction "phase:2,log,auditlog,pass"',
        f'SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={waf.paranoia_level}"',
        'SecAction "id:900110,phase:1,nolog,pass,t:none,'
        f"setvar:tx.inbound_anomaly_score_threshold={waf.inbound_threshold},"
        f'setvar:tx.outbound_anomaly_score_threshold={waf.outbound_threshold}"',
        f'SecAction "id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version={CRS_SETUP_VERSION}"',
    ]
    rules = [rule for i, r in enumerate(declared_routes(gw)) if (rule := _route_rule(i, r))]
    if rules:
        lines.append("# The routes' exclusions, before the CRS.")
        lines += rules
    lines.append(f"Include {waf.crs_path}/rules/*.conf")
    return "\n".join(lines) + "\n"


def controls(topo: Topology) -> list[tuple[str, str]]:
    """What the gateway's configuration does, each with the directive that does it: its header
    says these and nothing else (a test finds each directive in the configuration)."""
    gw = topo.edge.api_gateway
    waf = "blocking" if gw.waf.mode == "blocking" else "detection only: logs, does not block"
    return [
        ("TLS termination", "ssl_certificate "),
        (f"WAF: ModSecurity with the OWASP CRS, {waf}", "modsecurity_rules_file "),
        (f"authentication of the API by {gw.auth.verifier.service}", "auth_request "),
        ("request rate limits per client and route class", "limit_req "),
        ("connection limits per client", "limit_conn "),
        ("body and header size limits", "client_max_body_size "),
        ("slow-client timeouts", "client_body_timeout "),
        ("load balancing with failover", "max_fails="),
        ("WebSockets", "proxy_set_header Upgrade "),
        ("security headers", "add_header Strict-Transport-Security "),
    ]


def workers(gw: ApiGateway) -> int:
    """nginx's worker processes: one per CPU of the gateway's limit (each holds the CRS in
    memory; `auto` would start one per CPU of the VM)."""
    return max(1, math.ceil(float(parse(gw.resources.limits.cpu))))


def template_context(topo: Topology) -> dict[str, object]:
    """What compose/api-gateway.conf.j2 writes out."""
    gw = topo.edge.api_gateway
    return {
        "gw": gw,
        "vm": topo.edge.vm,
        "controls": controls(topo),
        "locations": locations(topo),
        "upstreams": upstreams(topo),
        "identity": [
            {"name": h, "answer": upstream_variable(h), "kept": header_variable(h)} for h in gw.auth.identity_headers
        ],
        "workers": workers(gw),
        "http_listen": HTTP_LISTEN,
        "auth_location": AUTH_LOCATION,
        "modsecurity_file": MODSECURITY_FILE,
        "module": gw.waf.module_path,
    }
