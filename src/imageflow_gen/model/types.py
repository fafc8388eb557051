"""Constrained scalar types shared by every area of the model.

Each type checks its own syntax and says what is wrong in words a user acts on. Inputs are
taken as written: no number is turned into a string or back (strict mode), so `1.10` is
never silently `1.1`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """Base of every model class: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


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

    full = {"type": "string", "pattern": pattern, "maxLength": max_len, **schema}
    return Annotated[str, PlainValidator(check), WithJsonSchema(full)]


def _checked_type(check: Callable[[Any], Any], schema: dict[str, Any], base: type = str) -> Any:
    return Annotated[base, PlainValidator(check), WithJsonSchema(schema)]


DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"

Name = _pattern_type(DNS_LABEL, "a DNS-1123 label (lower-case letters, digits and '-', "
                     "starting and ending with a letter or digit)", 63,
                     {"description": "A DNS-1123 label."})
SubdomainName = _pattern_type(DNS_SUBDOMAIN, "a DNS-1123 subdomain", 253,
                              {"description": "A DNS-1123 subdomain."})
Hostname = _pattern_type(r"(\*\.)?" + DNS_SUBDOMAIN, "a host name such as api.example.com", 253,
                         {"description": "A DNS host name; a leading '*.' wildcard is allowed."})
LabelKey = _pattern_type(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                         r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?",
                         "a Kubernetes label key ([prefix/]name)", 316,
                         {"description": "A Kubernetes label key: optional DNS prefix and '/', then a name."})
LabelValue = _pattern_type(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", "a Kubernetes label value", 63,
                           {"description": "A Kubernetes label value (may be empty)."})
BucketName = _pattern_type(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name (3-63 lower-case letters, "
                           "digits, '.' and '-')", 63, {"description": "An S3 bucket name."})
Duration = _pattern_type(r"[0-9]+(\.[0-9]+)?(ms|s|m|h)", "a duration such as 500ms, 10s, 5m or 1h", 32,
                         {"description": "A duration: a number and a unit (ms, s, m, h)."})
K3sVersion = _pattern_type(r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+", "a K3s version such as v1.28.9+k3s1", 64,
                           {"description": "A K3s release, e.g. v1.28.9+k3s1."})
AbsolutePath = _pattern_type(r"/([^/\x00]+/?)*", "an absolute path without '..'", 4096,
                             {"description": "An absolute file system path."})
UrlPrefix = _pattern_type(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", "a URL path prefix starting with '/'", 1024,
                          {"description": "A URL path prefix, starting with '/'."})
ListenerName = _pattern_type(r"[A-Z][A-Z0-9_]*", "a Kafka listener name in upper case (e.g. VPN)", 63,
                             {"description": "A Kafka listener name, upper case."})
KafkaClusterId = _pattern_type(r"[A-Za-z0-9_-]{22}", "a KRaft cluster id (22 characters of base64url)", 22,
                               {"description": "The KRaft cluster id: 16 bytes in base64url, 22 characters."})
EnvName = _pattern_type(r"[A-Z_][A-Z0-9_]*", "an environment variable name in upper case", 128,
                        {"description": "An environment variable name."})
# Host, optional port and a plain path: nothing that could end a line or a directive in the
# nginx or shell text the URL is written into.
Url = _pattern_type(r"https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?",
                    "an http(s) URL such as http://auth.internal:8080/verify (host, port, path)", 2048,
                    {"description": "An http or https URL: host, optional port, optional path."})

# A Kubernetes resource quantity, e.g. 100m, 1.5, 8Gi, 1Ti, 3e3.
_QUANTITY = r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
Quantity = _pattern_type(_QUANTITY, "a Kubernetes quantity such as 500m, 2, 512Mi or 1Ti", 64,
                         {"description": "A Kubernetes resource quantity."})


def _cpu(value: Any) -> str:
    """CPU is written as a whole number of cores (2) or as a quantity string ("500m")."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _fail("cpu", "must not be negative")
        return str(value)
    text = _string(value, "a CPU amount such as 2 or \"500m\"")
    if not re.fullmatch(_QUANTITY, text):
        raise _fail("pattern", f"{text!r} is not a CPU amount such as 2 or \"500m\"")
    return text


Cpu = _checked_type(_cpu, {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _QUANTITY}],
                           "description": "CPU: whole cores (2) or a quantity (\"500m\")."})


def _ipv4(value: Any) -> str:
    text = _string(value, "an IPv4 address")
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise _fail("ip", f"{text!r} is not an IPv4 address") from None
    return text


IPv4 = _checked_type(_ipv4, {"type": "string", "format": "ipv4", "description": "An IPv4 address."})

# An OCI image reference that names a version: [registry/]path:tag, optionally @sha256:digest.
_IMAGE = (r"(?P<repo>[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9]+([._-][a-z0-9]+)*)*(:[0-9]+)?"
          r"(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*)"
          r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[a-f0-9]{64}))?")


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


Image = _checked_type(_image, {"type": "string", "pattern": _IMAGE,
                               "description": "An image reference pinned by tag (not 'latest') or digest."})

Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP or UDP port, 1 to 65535."""
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Percent = Annotated[float, Field(ge=0, le=100)]
UtilizationPercent = Annotated[int, Field(ge=1, le=100)]


def _sorted(mapping: dict[Any, Any]) -> dict[Any, Any]:
    return dict(sorted(mapping.items()))


# A map whose order carries no meaning is kept sorted by key, so that reordering the keys
# of a profile never changes a byte of the output.
Sorted = AfterValidator(_sorted)
