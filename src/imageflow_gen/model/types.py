"""Constrained scalar types shared by every area of the model.

Each type checks its own syntax and says what is wrong in words a user acts on. Inputs are
taken as written: no number is turned into a string or back (strict mode), so `1.10` is
never silently `1.1`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from decimal import Decimal
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """Base of every model class: unknown keys are errors, types are not coerced.

    The validators are built when a class first validates (the topology's builds those of
    every area it holds, once per process), not at import; the docstrings under the fields
    are descriptions for the generated schema, read by schema.py, not at import.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def _fail(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _fail("string_type", f"must be {what} (a string)")
    return value


def _pattern_type(pattern: str, what: str, max_len: int, schema: dict[str, Any]) -> Any:
    regex = re.compile(pattern)

    def check(value: Any) -> str:
        text = _string(value, what)
        if len(text) > max_len:
            raise _fail("too_long", f"{text!r} is {len(text)} characters; {what} has at most {max_len}")
        if not regex.fullmatch(text):
            raise _fail("pattern", f"{text!r} is not {what}")
        return text

    # JSON Schema's pattern searches: anchored, it means what fullmatch means here.
    full = {"type": "string", "pattern": f"^(?:{pattern})$", "maxLength": max_len, **schema}
    return Annotated[str, PlainValidator(check), WithJsonSchema(full)]


def _checked_type(check: Callable[[Any], Any], schema: dict[str, Any], base: type = str) -> Any:
    return Annotated[base, PlainValidator(check), WithJsonSchema(schema)]


DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"

Name = _pattern_type(
    DNS_LABEL,
    "a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)",
    63,
    {"description": "A DNS-1123 label."},
)
SubdomainName = _pattern_type(DNS_SUBDOMAIN, "a DNS-1123 subdomain", 253, {"description": "A DNS-1123 subdomain."})
# A key inside a Secret or ConfigMap, as the API server takes it; never "." or "..", so it is
# also a safe file name where the key is mounted.
SecretKey = _pattern_type(
    r"(?!\.\.?$)[-._a-zA-Z0-9]+",
    "a Secret key (letters, digits, '-', '_' and '.'; not '.' or '..')",
    253,
    {"description": "A key inside a Secret: letters, digits, '-', '_' and '.'."},
)
# Services and the other kinds named by DNS-1035 labels: a letter first, so the name can be a
# host name of its own (the API server refuses a Service named 1-resize).
ServiceName = _pattern_type(
    r"[a-z]([-a-z0-9]*[a-z0-9])?",
    "a DNS-1035 label (lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)",
    63,
    {"description": "A DNS-1035 label: the name of a Service."},
)
Hostname = _pattern_type(
    r"(\*\.)?" + DNS_SUBDOMAIN,
    "a host name such as api.example.com",
    253,
    {"description": "A DNS host name; a leading '*.' wildcard is allowed."},
)
LabelKey = _pattern_type(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?",
    "a Kubernetes label key ([prefix/]name)",
    316,
    {"description": "A Kubernetes label key: optional DNS prefix and '/', then a name."},
)
LabelValue = _pattern_type(
    r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?",
    "a Kubernetes label value",
    63,
    {"description": "A Kubernetes label value (may be empty)."},
)
BucketName = _pattern_type(
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
    "an S3 bucket name (3-63 lower-case letters, digits, '.' and '-')",
    63,
    {"description": "An S3 bucket name."},
)
_DURATION = r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)"
Duration = _pattern_type(
    _DURATION,
    "a duration such as 500ms, 10s, 5m or 1h",
    32,
    {"description": "A duration: a number and a unit (ms, s, m, h)."},
)
_MILLISECONDS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
Retention = _pattern_type(
    r"[1-9][0-9]*(h|d|w|y)",
    "a retention such as 12h, 15d, 4w or 1y",
    16,
    {"description": "How long data is kept: a whole number and a unit (h, d, w, y)."},
)


def duration_ms(text: str) -> Decimal:
    """A duration (500ms, 1.5s, 5m, 1h) in milliseconds."""
    match = re.fullmatch(_DURATION, text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration")
    return Decimal(match.group(1)) * _MILLISECONDS[match.group(2)]


def _mesh_duration(value: Any) -> str:
    """A duration Istio accepts: its CRDs' rules refuse anything not above one millisecond."""
    what = "a duration above 1ms such as 500ms, 10s, 5m or 1h"
    text = _string(value, what)
    match = re.fullmatch(_DURATION, text) if len(text) <= 32 else None
    if match is None:
        raise _fail("pattern", f"{text!r} is not {what}")
    if Decimal(match.group(1)) * _MILLISECONDS[match.group(2)] <= 1:
        raise _fail("range", f"{text!r} is too short: Istio takes durations above 1ms")
    return text


MeshDuration = _checked_type(
    _mesh_duration,
    {
        "type": "string",
        "pattern": f"^(?:{_DURATION})$",
        "maxLength": 32,
        "description": "A duration above 1ms (Istio refuses shorter): a number and a unit (ms, s, m, h).",
    },
)
K3sVersion = _pattern_type(
    r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+",
    "a K3s version such as v1.28.9+k3s1",
    64,
    {"description": "A K3s release, e.g. v1.28.9+k3s1."},
)
# Paths and URL prefixes land in shell commands, compose files, nginx directives and Kubernetes
# env values: only characters that mean nothing to any of them (no spaces, quotes, `$`, `;`,
# braces or parentheses), and no `.` or `..` segment.
# (A segment may start with one '.', not two, and is never '.' alone: no lookahead, which the
# Go regexp of Helm's schema check lacks.)
_SEGMENT = r"\.?[A-Za-z0-9_@+=,~-][A-Za-z0-9._@+=,~-]*"
AbsolutePath = _pattern_type(
    rf"/|(/{_SEGMENT})+/?",
    "an absolute path (letters, digits and ._@+=,~- between slashes; no '.' or '..' segment)",
    4096,
    {"description": "An absolute file system path."},
)
UrlPrefix = _pattern_type(
    r"/([A-Za-z0-9._~@:+=,-]+/?)*",
    "a URL path prefix starting with '/' (letters, digits and ._~@:+=,- between slashes)",
    1024,
    {"description": "A URL path prefix, starting with '/'."},
)
# Free text a person reads (purposes, reasons): one line of printable characters.
# (The line separators are literal characters: Go's regexp, in Helm's schema check, has no \u.)
Text = _pattern_type(
    r"[^\x00-\x1f\x7f" + "\u2028\u2029" + "]*",
    "one line of text (no control characters or line breaks)",
    500,
    {"description": "One line of text."},
)
# A MinIO/S3 region and an External Secrets remote key prefix.
Region = _pattern_type(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", "a region such as us-east-1", 63, {"description": "An S3 region name."}
)
KeyPrefix = _pattern_type(
    r"[A-Za-z0-9/_.-]*", "a key prefix (letters, digits and /_.-)", 253, {"description": "A remote key prefix."}
)
Provisioner = _pattern_type(
    rf"{DNS_SUBDOMAIN}(/{DNS_LABEL})?",
    "a provisioner name such as kubernetes.io/no-provisioner or rancher.io/local-path",
    253,
    {"description": "A StorageClass provisioner."},
)
ListenerName = _pattern_type(
    r"[A-Z][A-Z0-9_]*",
    "a Kafka listener name in upper case (e.g. VPN)",
    63,
    {"description": "A Kafka listener name, upper case."},
)
KafkaClusterId = _pattern_type(
    r"[A-Za-z0-9_-]{22}",
    "a KRaft cluster id (22 characters of base64url)",
    22,
    {"description": "The KRaft cluster id: 16 bytes in base64url, 22 characters."},
)
EnvName = _pattern_type(
    r"[A-Z_][A-Z0-9_]*",
    "an environment variable name in upper case",
    128,
    {"description": "An environment variable name."},
)
# An IANA service name, as Kubernetes requires of a port name: at most 15 characters.
PortName = _pattern_type(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
    "a port name (lower-case letters, digits and '-', at most 15 characters)",
    15,
    {"description": "A port name (IANA service name)."},
)
FileName = _pattern_type(
    r"[A-Za-z0-9][-._A-Za-z0-9]*",
    "a file name (letters, digits and -._, no slash)",
    253,
    {"description": "A file name, also its key in the ConfigMap."},
)
# Host, optional port and a plain path: nothing that could end a line or a directive in the
# nginx or shell text the URL is written into.
Url = _pattern_type(
    r"https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?",
    "an http(s) URL such as http://auth.internal:8080/verify (host, port, path)",
    2048,
    {"description": "An http or https URL: host, optional port, optional path."},
)

# An nginx size: bytes, or kilobytes and megabytes (k, m), as client_max_body_size takes it.
NginxSize = _pattern_type(
    r"[1-9][0-9]{0,8}[km]?",
    "an nginx size such as 512k or 64m (a whole number of bytes, k or m)",
    10,
    {"description": "A size in bytes, or with k (KiB) or m (MiB)."},
)
# An HTTP header name: letters, digits and '-' (what nginx's $http_ and $upstream_http_
# variables can name).
HeaderName = _pattern_type(
    r"[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*",
    "an HTTP header name such as X-Auth-User (letters, digits and single '-')",
    64,
    {"description": "An HTTP header name."},
)

# A cron schedule of five fields (minute hour day month weekday), as a CronJob takes it.
CronSchedule = _pattern_type(
    r"[0-9*/,-]+( [0-9*/,-]+){4}",
    "a cron schedule of five fields (minute hour day-of-month month day-of-week; digits, '*', '/', ',', '-')",
    100,
    {"description": "A five-field cron schedule."},
)

# Kafka names, kubeseal ciphertext and Git locations.
TopicName = _pattern_type(
    r"[A-Za-z0-9._-]+",
    "a Kafka topic name (letters, digits, '.', '_' and '-')",
    249,
    {"description": "A Kafka topic name."},
)
GroupId = _pattern_type(
    r"[A-Za-z0-9._-]+",
    "a Kafka Connect group id (letters, digits, '.', '_' and '-')",
    249,
    {"description": "A Kafka consumer group id."},
)
Ciphertext = _pattern_type(
    r"[A-Za-z0-9+/=]{16,}",
    "a sealed (encrypted) value in base64, from kubeseal",
    65536,
    {"description": "A value encrypted by kubeseal for the cluster's controller."},
)
GitUrl = _pattern_type(
    r"(https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)+|"
    r"(ssh://)?[A-Za-z0-9._-]+@[A-Za-z0-9.-]+[:/][A-Za-z0-9._~/-]+)",
    "a Git repository URL (https://host/org/repo.git or git@host:org/repo.git)",
    2048,
    {"description": "A Git repository URL, https or ssh."},
)
GitRevision = _pattern_type(
    r"[A-Za-z0-9._/-]+", "a branch, tag or commit", 255, {"description": "A Git branch, tag or commit."}
)
RepoPath = _pattern_type(
    r"([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?",
    "a relative path inside the repository (no leading '/', no '..')",
    1024,
    {"description": "A relative path in the repository; empty for its root."},
)
ApiServer = _pattern_type(
    r"https://[A-Za-z0-9.-]+(:[0-9]+)?",
    "an API server URL such as https://kubernetes.default.svc",
    2048,
    {"description": "A Kubernetes API server URL."},
)

# A Kubernetes resource quantity, e.g. 100m, 1.5, 8Gi, 1Ti, 3e3.
_QUANTITY = r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
# The largest amount a Kubernetes quantity holds (the API server clamps larger ones silently).
QUANTITY_MAX = 2**63 - 1


def _in_range(text: str, what: str) -> str:
    if len(text) > 64 or not re.fullmatch(_QUANTITY, text):
        raise _fail("pattern", f"{text!r} is not {what}")
    from .quantity import parse

    try:
        too_large = parse(text) > QUANTITY_MAX
    except ArithmeticError:  # an exponent beyond what Decimal holds
        too_large = True
    if too_large:
        raise _fail("range", f"{text!r} is out of range: a Kubernetes quantity is at most {QUANTITY_MAX}")
    return text


def _number_text(value: Any) -> Any:
    """A quantity written as a YAML number (2, 0.5, 1e3), as the string Kubernetes would read."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not math.isfinite(value):  # 1e309 read as a number is inf
        raise _fail(
            "range",
            "is out of range: a Kubernetes quantity is at most "
            f"{QUANTITY_MAX}" + ("" if value > 0 else ", and not negative"),
        )
    if value < 0:
        raise _fail("range", f"{value!r} is negative; a quantity is not")
    return format(Decimal(repr(value)).normalize(), "f")


def _quantity(value: Any) -> str:
    what = "a Kubernetes quantity such as 500m, 2, 512Mi or 1Ti"
    return _in_range(_string(_number_text(value), what), what)


_QUANTITY_SCHEMA = [
    {"type": "number", "minimum": 0, "maximum": QUANTITY_MAX},
    {"type": "string", "pattern": f"^(?:{_QUANTITY})$", "maxLength": 64},
]
Quantity = _checked_type(_quantity, {"anyOf": _QUANTITY_SCHEMA, "description": "A Kubernetes resource quantity."})


def _size(value: Any) -> str:
    """A volume's size: a quantity above zero (the API server refuses an empty volume)."""
    text = _quantity(value)
    from .quantity import parse

    if parse(text) <= 0:
        raise _fail("range", f"{text!r} is no size: a volume holds more than zero bytes")
    return text


Size = _checked_type(
    _size,
    {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": QUANTITY_MAX},
            _QUANTITY_SCHEMA[1],
        ],
        "description": "A volume size: a Kubernetes quantity above zero, e.g. 10Gi.",
    },
)


def _cpu(value: Any) -> str:
    """CPU is written as a number of cores (2, 0.5) or as a quantity string ("500m")."""
    what = 'a CPU amount such as 2 or "500m"'
    return _in_range(_string(_number_text(value), what), what)


Cpu = _checked_type(_cpu, {"anyOf": _QUANTITY_SCHEMA, "description": 'CPU: whole cores (2) or a quantity ("500m").'})


def _ipv4(value: Any) -> str:
    text = _string(value, "an IPv4 address")
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise _fail("ip", f"{text!r} is not an IPv4 address") from None
    return text


IPv4 = _checked_type(_ipv4, {"type": "string", "format": "ipv4", "description": "An IPv4 address."})

# An OCI image reference that names a version: [registry/]path:tag, optionally @sha256:digest.
_IMAGE = (
    r"(?P<repo>[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9]+([._-][a-z0-9]+)*)*(:[0-9]+)?"
    r"(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[a-f0-9]{64}))?"
)


def _image(value: Any) -> str:
    text = _string(value, "an image reference such as nginx:1.27.3")
    match = re.fullmatch(_IMAGE, text)
    if not match:
        raise _fail("image", f"{text!r} is not an image reference such as registry/name:tag")
    if not match.group("tag") and not match.group("digest"):
        raise _fail("image", f"{text!r} names no tag or digest; pin a version (name:tag or name@sha256:...)")
    if match.group("tag") == "latest" and not match.group("digest"):
        raise _fail("image", f"{text!r} uses the moving tag 'latest'; pin a version")
    return text


# In the JSON schema: anchored, and without group names (ECMA-262 and Go spell them differently);
# ending in a tag or a digest, and not in the tag latest.
Image = _checked_type(
    _image,
    {
        "type": "string",
        "pattern": "^(?:" + re.sub(r"\(\?P<\w+>", "(", _IMAGE) + ")$",
        "allOf": [{"pattern": "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"}],
        "not": {"pattern": ":latest$"},
        "description": "An image reference pinned by tag (not 'latest') or digest.",
    },
)

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP or UDP port, 1 to 65535."""
NodePort = Annotated[int, Field(ge=30000, le=32767)]
"""A Service's node port, in the API server's default range 30000-32767."""
# Counts land in int32 fields (replicas, partitions, node ids, sizes): bounded like them.
INT32_MAX = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive = Annotated[int, Field(ge=1, le=INT32_MAX)]
Percent = Annotated[float, Field(ge=0, le=100)]
UtilizationPercent = Annotated[int, Field(ge=1, le=100)]


def _sorted(mapping: dict[Any, Any]) -> dict[Any, Any]:
    return dict(sorted(mapping.items()))


# A map whose order carries no meaning is kept sorted by key, so that reordering the keys
# of a profile never changes a byte of the output.
Sorted = AfterValidator(_sorted)
