"""The pydantic models of minga.yaml.

Shorthands are normalised by ``before`` validators so that every field has one type
after validation (no unions): ``command: "python app.py"`` becomes a list,
``depends_on: [db]`` a mapping, ``broker: embedded`` a :class:`BrokerSpec`.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from minga.spec._units import (
    CPU_EXPECTED,
    DURATION_EXPECTED,
    DURATION_PATTERN,
    MEMORY_EXPECTED,
    parse_cpu,
    parse_duration,
    parse_memory,
)


def _number_or_text(number: dict[str, Any], pattern: str, description: str) -> WithJsonSchema:
    """The JSON schema of a quantity written either as a bare ``number`` or as text with a unit."""
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description})


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    _number_or_text({"type": "number", "minimum": 0}, DURATION_PATTERN, DURATION_EXPECTED),
]
"""Seconds, written as a number or as ``500ms``, ``2s``, ``1m30s``, ``1h``."""

MemorySize = Annotated[
    int,
    BeforeValidator(parse_memory),
    _number_or_text(
        {"type": "integer", "exclusiveMinimum": 0}, r"^\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]?|[bB])?$", MEMORY_EXPECTED
    ),
]
"""Bytes, written as an integer or as ``256Mi``, ``1Gi``, ``512MB``."""

CpuAmount = Annotated[
    float,
    BeforeValidator(parse_cpu),
    _number_or_text({"type": "number", "exclusiveMinimum": 0}, r"^\d+(\.\d+)?m?$", CPU_EXPECTED),
]
"""CPU cores, written as a number or as millicores (``500m``)."""

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
MODULE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"

Loc = tuple[str | int, ...]
"""A place in the document: keys and list indexes from the top (``("services", "orders", "replicas")``)."""

RestartPolicy = Literal["always", "on-failure", "never"]
DependencyCondition = Literal["healthy", "started"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheckSpec(_Strict):
    """How the control plane checks a replica: ``GET <http>`` on a port, or a TCP connect.

    Exactly one of ``http`` (a path) or ``tcp`` (``true``) is set. ``port`` names the
    replica's port to check (``http`` by default). A replica is critical after
    ``failures`` checks in a row fail; checks start ``start_period`` after it starts.
    """

    http: str | None = Field(default=None, pattern=r"^/", description="path for an HTTP GET, e.g. /healthz")
    tcp: bool = Field(default=False, description="check by opening a TCP connection")
    port: str = Field(default="http", description="the name of the replica's port to check")
    interval: Duration = Field(default=1.0, description="seconds between checks")
    timeout: Duration = Field(default=0.5, description="seconds a check may take")
    start_period: Duration = Field(default=0.0, description="seconds after start before failures count")
    failures: int = Field(default=1, ge=1, description="failed checks in a row that mark a replica critical")

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheckSpec:
        if (self.http is None) == (not self.tcp):
            raise ValueError("exactly one of `http: /path` or `tcp: true`")
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) no longer than interval ({self.interval:g}s)")
        return self


class DependsOnSpec(_Strict):
    """Start a service only once another one is ``started`` or ``healthy`` (the default)."""

    condition: DependencyCondition = "healthy"


class ResourcesSpec(_Strict):
    """Limits for each replica: enforced where the OS allows (rlimits), reported where not."""

    cpu: CpuAmount | None = Field(default=None, description="CPU cores per replica")
    memory: MemorySize | None = Field(default=None, description="bytes of memory per replica")


def _command(value: Any) -> Any:
    if isinstance(value, str):
        return shlex.split(value)
    return value


def _depends_on(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return {name: {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


def _ports(value: Any) -> Any:
    if isinstance(value, list):
        return {name: 0 for name in value} if all(isinstance(n, str) for n in value) else value
    return value


def _env(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, bool):
                out[key] = "true" if item else "false"
            elif isinstance(item, int | float):
                out[key] = str(item)
            else:
                out[key] = item
        return out
    return value


SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ENV_SCHEMA = {
    "type": "object",
    "description": "variables: text, a number or a boolean, or {secret: NAME} (kept by `minga secret set`)",
    "additionalProperties": {
        "anyOf": [
            {"type": ["string", "number", "boolean"]},
            {
                "type": "object",
                "properties": {"secret": {"type": "string", "pattern": SECRET_NAME}},
                "required": ["secret"],
                "additionalProperties": False,
            },
        ]
    },
}


class ServiceSpec(_Strict):
    """One service: what to run, how many replicas, and how to keep them healthy.

    Exactly one of ``module`` (``"pkg.mod:Class"``, run as ``python -m minga.service``)
    or ``command`` (an argv list, or a string split like a shell would) is set.
    ``ports`` maps port names to numbers, ``0`` meaning "assign a free one per replica";
    a list of names is shorthand for all zeros.
    """

    module: str | None = Field(default=None, pattern=MODULE_PATTERN, description='"pkg.mod:Class"')
    command: Annotated[list[str] | None, BeforeValidator(_command)] = Field(
        default=None, min_length=1, description="argv, or a string split like a shell would"
    )
    replicas: int = Field(default=1, ge=0, le=1000)
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    env: Annotated[dict[str, str], BeforeValidator(_env), WithJsonSchema(_ENV_SCHEMA)] = Field(default_factory=dict)
    secrets: dict[str, Annotated[str, Field(pattern=SECRET_NAME)]] = Field(
        default_factory=dict,
        description="variable -> secret name; written in env as `VAR: {secret: NAME}`",
    )
    workdir: str | None = Field(default=None, description="working directory, relative to the spec file")
    ports: Annotated[dict[str, Annotated[int, Field(ge=0, le=65535)]], BeforeValidator(_ports)] = Field(
        default_factory=dict, description="port name -> number; 0 assigns a free port per replica"
    )
    health: HealthCheckSpec | None = None
    restart: RestartPolicy = "always"
    depends_on: Annotated[dict[str, DependsOnSpec], BeforeValidator(_depends_on)] = Field(
        default_factory=dict
    )
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    stop_grace: Duration = Field(default=10.0, description="seconds between SIGTERM and SIGKILL on stop")

    @model_validator(mode="before")
    @classmethod
    def _secret_refs(cls, value: Any) -> Any:
        """``env: {VAR: {secret: NAME}}`` moves to ``secrets: {VAR: NAME}``: values stay out of the spec."""
        if not isinstance(value, dict) or not isinstance(value.get("env"), dict):
            return value
        env, secrets = {}, dict(value.get("secrets") or {})
        for key, item in value["env"].items():
            if isinstance(item, dict) and set(item) == {"secret"}:
                secrets[key] = item["secret"]
            else:
                env[key] = item  # anything else is checked, and reported at its place, as text
        return {**value, "env": env, "secrets": secrets}

    @model_validator(mode="after")
    def _one_entry(self) -> ServiceSpec:
        if (self.module is None) == (self.command is None):
            raise ValueError('exactly one of `module: "pkg.mod:Class"` or `command: [...]`')
        return self


class BrokerSpec(_Strict):
    """The message broker: embedded (``url`` unset; listens on ``host:port``) or a NATS server at ``url``.

    Shorthands: ``broker: embedded`` and ``broker: nats://host:4222``.
    """

    url: str | None = Field(default=None, pattern=r"^(nats|tls)://", description="a NATS server URL")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="the embedded broker's port; 0 (the default) = any free port")
    jetstream: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "embedded" or value is None:
            return {}
        if isinstance(value, str):
            return {"url": value}
        return value

    @property
    def embedded(self) -> bool:
        return self.url is None


class DiscoverySpec(_Strict):
    """The service registry's store: ``embedded`` (in the control plane) or ``etcd`` at ``url``.

    Shorthands: ``discovery: embedded`` and ``discovery: http://127.0.0.1:2379`` (etcd).
    ``ttl`` is the lease a replica must renew; renewals happen every ``ttl / 3``.
    """

    store: Literal["embedded", "etcd"] = "embedded"
    url: str | None = Field(default=None, pattern=r"^https?://", description="etcd client URL")
    prefix: str = Field(default="/minga/", pattern=r"^/.*/$", description="etcd key prefix")
    ttl: Duration = Field(default=5.0, description="lease seconds a replica must renew")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "embedded" or value is None:
            return {}
        if isinstance(value, str):
            return {"store": "etcd", "url": value}
        if isinstance(value, dict) and "url" in value and "store" not in value:
            return {"store": "etcd", **value}
        return value

    @model_validator(mode="after")
    def _url_for_etcd(self) -> DiscoverySpec:
        if self.store == "etcd" and self.url is None:
            raise ValueError("an etcd `url: http://host:2379` with `store: etcd`")
        if self.store == "embedded" and self.url is not None:
            raise ValueError("no `url` with `store: embedded`")
        if self.ttl < 0.5:
            raise ValueError(f"a lease `ttl` of at least 0.5s, not {self.ttl:g}s")
        return self


def _listen(value: Any) -> Any:
    if isinstance(value, dict) and "listen" in value:
        value = dict(value)
        listen = value.pop("listen")
        if isinstance(listen, int) and not isinstance(listen, bool):
            value.setdefault("port", listen)
        elif isinstance(listen, str) and ":" in listen:
            host, _, port = listen.rpartition(":")
            value.setdefault("host", host.strip("[]"))
            value.setdefault("port", int(port) if port.isdigit() else port)
        elif isinstance(listen, str) and listen.isdigit():
            value.setdefault("port", int(listen))
        else:
            value.setdefault("port", listen)
    return value


class GatewayTimeoutsSpec(_Strict):
    """How long the gateway waits on an upstream, in seconds: to connect, for the response
    headers once the request is sent, and between two reads of the response body."""

    connect: Duration = Field(default=2.0, gt=0, description="seconds to open a connection")
    response: Duration = Field(default=30.0, gt=0, description="seconds until the response headers")
    idle: Duration = Field(default=60.0, gt=0, description="seconds between two reads of the body")


JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "HS256", "HS384", "HS512",
]
"""The signature algorithms a route may accept (``none`` is not one of them)."""


class JwtSpec(_Strict):
    """Bearer JWTs a route accepts: signed with one of ``algorithms`` by one of the keys (a JWKS
    document, PEM public keys, or for ``HS*`` a shared secret in a file), from ``issuer`` for
    ``audience``, carrying every one of ``scopes`` (in ``scope`` or ``scp``). Files are relative
    to the spec file."""

    algorithms: list[JwtAlgorithm] = Field(min_length=1, description="accepted algorithms (an allow-list)")
    jwks_file: str | None = Field(default=None, description="a JWKS document (public keys)")
    pem_files: list[str] = Field(default_factory=list, description="PEM public keys")
    secret_file: str | None = Field(default=None, description="the shared secret for HS256/384/512")
    issuer: str | None = Field(default=None, description="the required iss claim")
    audience: str | None = Field(default=None, description="the required aud claim")
    scopes: list[str] = Field(default_factory=list, description="scopes every token must carry")
    leeway: Duration = Field(default=30.0, ge=0, le=300, description="seconds of clock skew on exp and nbf")

    @model_validator(mode="after")
    def _keys_fit(self) -> JwtSpec:
        shared = [a for a in self.algorithms if a.startswith("HS")]
        public = [a for a in self.algorithms if not a.startswith("HS")]
        if shared and public:
            raise ValueError(
                "a route accepts either HS* (shared secret) or public-key algorithms, not both: "
                "split the algorithms list"
            )
        if shared and self.secret_file is None:
            raise ValueError("HS* algorithms need secret_file")
        if public and self.jwks_file is None and not self.pem_files:
            raise ValueError("public-key algorithms need jwks_file or pem_files")
        return self


class RouteAuthSpec(_Strict):
    """Who may use a route: a JWT (``jwt``) or an API key (``api_keys``: name -> sha256 hex digest
    of the key, or ``api_keys_file`` with ``name digest`` lines), sent in ``api_key_header``."""

    jwt: JwtSpec | None = None
    api_keys: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=dict, description="name -> sha256 hex digest of the key"
    )
    api_keys_file: str | None = Field(default=None, description="lines of 'name sha256-hex-digest'")
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")

    @model_validator(mode="after")
    def _something(self) -> RouteAuthSpec:
        if self.jwt is None and not self.api_keys and self.api_keys_file is None:
            raise ValueError("auth needs jwt, api_keys or api_keys_file")
        return self


class RouteSpec(_Strict):
    """One gateway route: requests whose path starts with ``path`` (and whose Host is ``host``,
    when set) go to ``service``; ``strip_prefix`` removes ``path`` before forwarding.

    A replica's own ``/metrics`` and ``/healthz`` are forwarded only when ``expose`` names
    them; ``auth``, when set, requires a JWT or an API key."""

    path: str = Field(pattern=r"^/", description="a path prefix, matched at segment boundaries")
    service: str = Field(pattern=NAME_PATTERN, description="the service that serves it")
    host: str | None = Field(default=None, description="match only this Host header (no port)")
    strip_prefix: bool = False
    timeouts: GatewayTimeoutsSpec = Field(default_factory=GatewayTimeoutsSpec)
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts for idempotent requests")
    expose: list[Literal["/metrics", "/healthz"]] = Field(
        default_factory=list, description="the replica's own endpoints this route forwards"
    )
    auth: RouteAuthSpec | None = None


class RateLimitSpec(_Strict):
    """A token bucket per client: ``rate`` requests per second, bursts of ``burst``.

    ``key`` is ``ip`` (the client's address) or ``header:NAME`` (an API key header;
    clients without it are limited by address).
    """

    rate: float = Field(gt=0, description="requests per second per client")
    burst: int | None = Field(default=None, ge=1, description="bucket size (default: rate, at least 1)")
    key: str = Field(default="ip", pattern=r"^(ip|header:[A-Za-z0-9-]+)$")


class GatewayLimitsSpec(_Strict):
    """What a client may send, and how slowly: bounds against big and slow requests."""

    max_body: MemorySize = Field(default=10 * 1024**2, description="largest request body (413 beyond)")
    max_header: MemorySize = Field(default=64 * 1024, description="largest request head (431 beyond)")
    header_timeout: Duration = Field(default=10.0, gt=0, description="seconds to send a request's head")
    body_timeout: Duration = Field(default=30.0, gt=0, description="seconds between two reads of a body")
    idle_timeout: Duration = Field(default=60.0, gt=0, description="seconds a kept-alive connection idles")
    rate: RateLimitSpec | None = None


class BreakerSpec(_Strict):
    """A circuit breaker per upstream instance: opens after ``failures`` in a row, probes after ``open_for``."""

    failures: int = Field(default=5, ge=1)
    open_for: Duration = Field(default=1.0, gt=0, description="seconds open before a probe")


class GatewaySpec(_Strict):
    """The API gateway the control plane starts: where it listens and its routes.

    ``listen: "127.0.0.1:8080"`` (or a port) is shorthand for ``host`` and ``port``;
    port 0 takes any free port. ``balance`` picks among healthy instances (``p2c``: power of
    two choices on outstanding requests). ``retry_budget`` caps retries at that share of
    requests.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    routes: list[RouteSpec] = Field(default_factory=list)
    limits: GatewayLimitsSpec = Field(default_factory=GatewayLimitsSpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    balance: Literal["p2c", "round_robin", "random"] = "p2c"
    retry_budget: float = Field(default=0.2, ge=0, le=1, description="retries per request, at most")
    metrics_path: str | None = Field(default="/metrics", pattern=r"^/", description="Prometheus metrics")
    access_log: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _listen(value)


class ControlSpec(_Strict):
    """Where the control plane's HTTP API listens: the registry (``/v1/discovery``, whose
    ``http_sd`` Prometheus reads), the monitor's API and the dashboard.

    ``listen: "127.0.0.1:7070"`` (or a port) is shorthand for ``host`` and ``port``. Port 0, the
    default, takes any free port, another one at each ``minga up``: fix it when something outside
    minga keeps the URL (a rendered prometheus.yml, a bookmark).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="the control plane's port; 0 = any free one")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _listen(value)


class OpenSection(BaseModel):
    """A section whose fields later releases define (``alerts:``); kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)


class AlertSpec(_Strict):
    """An alert rule: fires when ``query`` (a metrics query, see minga.monitor) is ``above`` or
    ``below`` a threshold for every evaluation during ``for``; resolves when it no longer is.

    Each series the query returns is its own alert (``sum by (service) (...)`` alerts per service).
    """

    query: str = Field(min_length=1, description="a metrics query, e.g. sum by (service) (rate(...[1m]))")
    above: float | None = Field(default=None, description="fire while the value is above this")
    below: float | None = Field(default=None, description="fire while the value is below this")
    for_: Duration = Field(default=0.0, alias="for", description="seconds the condition must hold first")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = Field(default="", description="one line shown with the alert")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_threshold(self) -> AlertSpec:
        if (self.above is None) == (self.below is None):
            raise ValueError("an alert needs exactly one of `above:` or `below:`")
        return self

    def breached(self, value: float) -> bool:
        """Whether ``value`` is on the firing side of the threshold."""
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below


class OpenSearchSpec(_Strict):
    """Ship every log line to OpenSearch or Elasticsearch through the bulk API, in ECS field names."""

    url: str = Field(pattern=r"^https?://", description="the cluster's URL, e.g. http://127.0.0.1:9200")
    index: str = Field(default="minga-logs", pattern=r"^[a-z0-9][a-z0-9._-]*$", description="the index written to")


class OtlpSpec(_Strict):
    """Ship every span to an OTLP/HTTP collector (Jaeger, Tempo, the OpenTelemetry Collector), as JSON."""

    url: str = Field(pattern=r"^https?://", description="the collector's base URL; spans go to <url>/v1/traces")


class MonitorSpec(_Strict):
    """How the control plane monitors: intervals and retention in seconds, the cardinality guard,
    and exporters to engines beyond one machine."""

    scrape_interval: Duration = Field(default=5.0, gt=0, description="seconds between scrapes of every replica")
    retention: Duration = Field(default=7 * 86400.0, gt=0, description="seconds metric samples are kept")
    raw_for: Duration = Field(default=3600.0, gt=0, description="seconds samples are kept at full resolution")
    max_series: int = Field(default=2000, ge=1, description="label sets one metric may have")
    log_retention: Duration = Field(default=7 * 86400.0, gt=0, description="seconds log lines are kept")
    scrape_allow: list[str] = Field(
        default_factory=list,
        description="networks (CIDR) scraped even when link-local, e.g. 169.254.0.0/16; none by default",
    )

    @field_validator("scrape_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"a network such as 169.254.0.0/16, not {item!r}") from None
        return value

    query_timeout: Duration = Field(
        default=10.0, gt=0, le=300, description="seconds a query may run before it is stopped (a request may ask for less)"
    )
    opensearch: OpenSearchSpec | None = None
    otlp: OtlpSpec | None = None


class Spec(_Strict):
    """A whole minga.yaml: services, the broker, the registry, the control plane's address, and the
    gateway, alert and monitor sections.

    Validation also checks the services against each other (unknown ``depends_on``
    targets, dependency cycles, fixed ports shared by several replicas).
    """

    version: Literal[1] = 1
    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="the system's name")
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    broker: BrokerSpec = Field(default_factory=BrokerSpec)
    discovery: DiscoverySpec = Field(default_factory=DiscoverySpec)
    control: ControlSpec = Field(default_factory=ControlSpec)
    gateway: GatewaySpec | None = None
    alerts: dict[str, AlertSpec] = Field(default_factory=dict, description="alert rules by name")
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)

    _source: str | None = PrivateAttr(default=None)
    _marks: dict[Loc, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str | None:
        """The file this spec was loaded from, when it was loaded from one."""
        return self._source

    def location(self, *loc: str | int) -> str | None:
        """``"minga.yaml:12:5"`` for a place in the document, e.g. ``spec.location("services", "orders")``.

        ``None`` when the spec was not loaded from text or the place is not written in it.
        """
        mark = self._marks.get(loc)
        if self._source is None or mark is None:
            return None
        return f"{self._source}:{mark[0]}:{mark[1]}"

    @field_validator("services", mode="before")
    @classmethod
    def _no_null_services(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Spec:
        if isinstance(info.context, dict) and info.context.get("minga_defer_checks"):
            return self
        found = cross_checks(self)
        if found:
            raise ValueError(
                "; ".join(f"{'.'.join(str(p) for p in loc if p != '[key]')}: {msg}" for loc, msg in found)
            )
        return self

    def start_order(self) -> list[str]:
        """Service names in an order where each comes after everything it depends on."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dep in self.services[name].depends_on:
                if dep in self.services:
                    visit(dep)
            order.append(name)

        for name in self.services:
            visit(name)
        return order


def cross_checks(spec: Spec) -> list[tuple[Loc, str]]:
    """Problems no single field shows: each is (location in the document, message)."""
    problems: list[tuple[Loc, str]] = []
    names = list(spec.services)
    for name in names:
        if not _NAME.match(name):
            problems.append(
                (
                    ("services", name, "[key]"),
                    f"found service name {name!r}, expected lowercase letters, digits, - and _",
                )
            )
    for name, svc in spec.services.items():
        for dep in svc.depends_on:
            if dep not in spec.services:
                problems.append(
                    (
                        ("services", name, "depends_on", dep, "[key]"),
                        f"found {dep!r}, expected one of the services: {', '.join(names)}",
                    )
                )
            elif dep == name:
                problems.append(
                    (("services", name, "depends_on", dep, "[key]"), "found itself, expected another service")
                )
        if svc.replicas > 1:
            for port_name, number in svc.ports.items():
                if number != 0:
                    problems.append(
                        (
                            ("services", name, "ports", port_name),
                            f"found fixed port {number} for {svc.replicas} replicas, expected 0 (a free port per replica)",
                        )
                    )
        if svc.health is not None and svc.health.port not in svc.ports:
            problems.append(
                (
                    ("services", name, "health", "port"),
                    f"found port name {svc.health.port!r}, expected one of this service's ports: "
                    + (", ".join(svc.ports) or "(none declared: add `ports: [http]`)"),
                )
            )
    if spec.gateway is not None:
        for i, route in enumerate(spec.gateway.routes):
            if route.service not in spec.services:
                problems.append(
                    (
                        ("gateway", "routes", i, "service"),
                        f"found {route.service!r}, expected one of the services: {', '.join(names)}",
                    )
                )
    problems.extend(_cycles(spec))
    return problems


def _cycles(spec: Spec) -> list[tuple[Loc, str]]:
    graph = {n: [d for d in s.depends_on if d in spec.services and d != n] for n, s in spec.services.items()}
    state: dict[str, int] = {}
    found: list[tuple[Loc, str]] = []
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                found.append(
                    (
                        ("services", node, "depends_on", dep, "[key]"),
                        f"found a dependency cycle {' -> '.join(cycle)}, expected none",
                    )
                )
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return found
