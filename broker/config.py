"""Typed configuration: the YAML file (IdPs, accounts, roles, rules), validated once at startup."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import string
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from broker import matchers
from broker.errors import ConfigError

Partition = Literal["aws", "aws-us-gov", "aws-cn"]
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-us-gov|aws-cn):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}",
    re.ASCII,
)
PROVIDER_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-us-gov|aws-cn):iam::(?P<account>\d{12}):(?:saml-provider/[\w.-]{1,128}|oidc-provider/\S+)",
    re.ASCII,
)
MAX_SESSION_SECONDS = 43200
MIN_SESSION_SECONDS = 900
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_path: bool = True) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ValueError(f"{what} must use https (plain http is allowed only on loopback)")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not have a query or fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ValueError(f"{what} must not have a path")
    return url


class ServerSettings(Strict):
    base_url: str = "http://127.0.0.1:8080"
    session_secret: SecretStr | None = None
    session_secret_file: Path | None = None
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Browser session lifetime cap; the assertion's own lifetime may shorten it.
    session_max_seconds: int = Field(8 * 3600, ge=60, le=43200)
    # Exactly one role granted and no deep link: skip the role picker, open the console.
    single_role_direct: bool = True

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return check_url(v, "base_url").rstrip("/")

    @model_validator(mode="after")
    def _one_secret(self) -> ServerSettings:
        if self.session_secret is not None and self.session_secret_file is not None:
            raise ValueError("set session_secret or session_secret_file, not both")
        return self

    def secret(self) -> bytes | None:
        if self.session_secret is not None:
            return self.session_secret.get_secret_value().encode()
        if self.session_secret_file is not None:
            try:
                return self.session_secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"server.session_secret_file: cannot read: {exc.strerror}"
                ) from None
        return None


class AwsSettings(Strict):
    partition: Partition = "aws"
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    sts_endpoint: str | None = None
    federation_endpoint: str | None = None
    sts_timeout_seconds: float = Field(5.0, gt=0, le=60)
    sts_max_attempts: int = Field(3, ge=1, le=10)
    sts_retry_base_seconds: float = Field(0.1, ge=0, le=10)

    @field_validator("sts_endpoint", "federation_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "endpoint").rstrip("/")

    def sts_url(self) -> str:
        if self.sts_endpoint:
            return self.sts_endpoint
        suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        return f"https://sts.{self.region}.{suffix}/"

    def federation_url(self) -> str:
        if self.federation_endpoint:
            return self.federation_endpoint
        return {
            "aws": "https://signin.aws.amazon.com/federation",
            "aws-us-gov": "https://signin.amazonaws-us-gov.com/federation",
            "aws-cn": "https://signin.amazonaws.cn/federation",
        }[self.partition]


def _default_algorithms() -> list[Algorithm]:
    return ["RS256", "ES256"]


class OidcIdp(Strict):
    type: Literal["oidc"]
    issuer: str
    audiences: list[str] = Field(min_length=1)
    algorithms: list[Algorithm] = Field(default_factory=_default_algorithms, min_length=1)
    clock_skew_seconds: int = Field(60, ge=0, le=600)
    max_token_bytes: int = Field(16 * 1024, ge=512, le=256 * 1024)
    # Regular JWKS refresh, and the floor between refreshes forced by an unknown kid.
    jwks_refresh_seconds: float = Field(3600, ge=1)
    jwks_min_refresh_seconds: float = Field(30, ge=0)
    http_timeout_seconds: float = Field(5, gt=0, le=60)
    # RoleSessionName template over claims, e.g. "{email}" or "gh-{repository_owner}".
    # Default: the email claim, else sub.
    session_name: str | None = None

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        return check_url(v, "issuer")

    @field_validator("session_name")
    @classmethod
    def _session_name(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                list(string.Formatter().parse(v))
            except ValueError as exc:
                raise ValueError(f"session_name: bad template: {exc}") from None
        return v


class SamlIdp(Strict):
    type: Literal["saml"]
    metadata_file: Path | None = None
    metadata_url: str | None = None
    entity_id: str | None = None
    sso_url: str | None = None
    certificates: list[str] = Field(default_factory=list)
    idp_initiated: bool = True
    audiences: list[str] = Field(
        default_factory=lambda: ["urn:amazon:webservices", "https://signin.aws.amazon.com/saml"],
        min_length=1,
    )
    trust_assertion_roles: bool = True
    # Deprecated digests/signatures (SHA-1) are refused unless this is set for the IdP.
    allow_sha1: bool = False
    clock_skew_seconds: int = Field(60, ge=0, le=600)
    # The IdP sends PrincipalTag:* / SourceIdentity attributes: trust policies then need
    # sts:TagSession / sts:SetSourceIdentity (see `broker setup trust-policy`).
    session_tags: bool = False
    source_identity: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> SamlIdp:
        sources = [
            self.metadata_file is not None,
            self.metadata_url is not None,
            self.entity_id is not None,
        ]
        if sum(sources) != 1:
            raise ValueError(
                "set exactly one of metadata_file, metadata_url or entity_id (+ sso_url, certificates)"
            )
        if self.entity_id is not None and not self.certificates:
            raise ValueError("entity_id needs certificates")
        return self


IdentityProvider = Annotated[OidcIdp | SamlIdp, Field(discriminator="type")]


class Account(Strict):
    name: str = Field(min_length=1, max_length=128)


class Role(Strict):
    arn: str
    max_session_seconds: int = Field(3600, ge=MIN_SESSION_SECONDS, le=MAX_SESSION_SECONDS)
    session_policy: str | None = None
    session_policy_arns: list[str] = Field(default_factory=list, max_length=10)
    description: str | None = None

    @field_validator("arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not ROLE_ARN.fullmatch(v):
            raise ValueError(f"not an IAM role ARN: {v!r}")
        return v

    @field_validator("session_policy", mode="before")
    @classmethod
    def _policy(cls, v: Any) -> str | None:
        if v is None:
            return None
        try:
            doc = json.loads(v) if isinstance(v, str) else v
        except json.JSONDecodeError as exc:
            raise ValueError(f"session_policy is not JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise ValueError("session_policy must be a JSON object")
        text = json.dumps(doc, separators=(",", ":"))
        if len(text) > 2048:
            raise ValueError("session_policy exceeds STS's 2048 characters once minified")
        return text

    @property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


class GrantTemplate(Strict):
    """A role ARN built from a rule's named regex groups: `arn:aws:iam::{account}:role/{role}`."""

    arn: str
    max_session_seconds: int = Field(3600, ge=MIN_SESSION_SECONDS, le=MAX_SESSION_SECONDS)

    def placeholders(self) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(self.arn) if f}


def _parse_when(v: Any) -> matchers.Matcher | None:
    if v is None or isinstance(v, matchers.ClaimTest | matchers.Combine | matchers.Not):
        return v
    return matchers.parse(v)


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, str | dict) else v


class Rule(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=NAME)
    idp: str = "*"
    description: str | None = None
    when: Annotated[matchers.Matcher | None, PlainValidator(_parse_when)] = None
    grant: list[str | GrantTemplate] = Field(default_factory=list)
    deny: list[str | GrantTemplate] = Field(default_factory=list)

    _listify_grant = field_validator("grant", "deny", mode="before")(_listify)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if not self.grant and not self.deny:
            raise ValueError("a rule needs grant and/or deny")
        groups = matchers.group_names(self.when) if self.when else set()
        for item in (*self.grant, *self.deny):
            if isinstance(item, GrantTemplate):
                missing = item.placeholders() - groups
                if missing:
                    raise ValueError(
                        f"template {item.arn!r} uses {sorted(missing)}, "
                        "which no regex in this rule's `when` always binds"
                    )
        return self


class StoreSettings(Strict):
    """Where the replay cache, login state and browser sessions live.

    One of: `url` (memory:// for one process, or a single Redis), `sentinels` with
    `service_name` (Redis Sentinel), or `cluster_nodes` (Redis Cluster seed nodes).
    Credentials come from files only, so the YAML never holds a password.
    """

    url: str = "memory://"
    key_prefix: str = "broker:"
    sentinels: list[str] | None = Field(None, min_length=1)
    service_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    cluster_nodes: list[str] | None = Field(None, min_length=1)
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = Field(None, min_length=1, max_length=128, pattern=r"^\S+$")
    password_file: Path | None = None
    sentinel_password_file: Path | None = None
    # Replicas that must acknowledge a replay-cache entry (WAIT) before an assertion is
    # accepted, so a failover cannot forget it. Unset: 1 with sentinels or cluster_nodes.
    replica_acks: int | None = Field(None, ge=0, le=5)
    replica_ack_timeout_seconds: float = Field(0.5, gt=0, le=10)
    # The most one store operation may take, reconnects and retries included.
    timeout_seconds: float = Field(2.0, gt=0, le=30)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v == "memory://" or v.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError("store.url must be memory:// or a redis:// / rediss:// / unix:// URL")
        if urlsplit(v).password:
            raise ValueError("store.url must not carry a password: use store.password_file")
        return v

    @field_validator("sentinels", "cluster_nodes")
    @classmethod
    def _addresses(cls, v: list[str] | None) -> list[str] | None:
        for address in v or ():
            StoreSettings.host_port(address)
        return v

    @model_validator(mode="after")
    def _one_topology(self) -> StoreSettings:
        given = [
            name
            for name, on in (
                ("url", "url" in self.model_fields_set),
                ("sentinels", self.sentinels is not None),
                ("cluster_nodes", self.cluster_nodes is not None),
            )
            if on
        ]
        if len(given) > 1:
            raise ValueError(f"set one of store.{', store.'.join(given)}, not several")
        if (self.sentinels is None) != (self.service_name is None):
            raise ValueError("store.sentinels and store.service_name go together")
        redis_only = ("tls", "ca_file", "username", "password_file", "replica_acks")
        if self.is_memory():
            extra = [k for k in redis_only if k in self.model_fields_set]
            if extra:
                raise ValueError(f"store.{extra[0]} needs a Redis store, not memory://")
        if self.sentinel_password_file is not None and self.sentinels is None:
            raise ValueError("store.sentinel_password_file needs store.sentinels")
        if self.sentinels is None and self.cluster_nodes is None and self.tls:
            raise ValueError("store.tls: for a single Redis, use a rediss:// URL")
        if self.ca_file is not None and not self.uses_tls():
            raise ValueError("store.ca_file needs TLS (store.tls: true, or a rediss:// URL)")
        if self.replica_ack_timeout_seconds >= self.timeout_seconds:
            raise ValueError(
                "store.replica_ack_timeout_seconds must be less than store.timeout_seconds"
            )
        return self

    def is_memory(self) -> bool:
        return self.url == "memory://" and self.sentinels is None and self.cluster_nodes is None

    def uses_tls(self) -> bool:
        return self.tls or self.url.startswith("rediss://")

    def acks(self) -> int:
        """Replica acknowledgements a replay-cache write waits for."""
        if self.replica_acks is not None:
            return self.replica_acks
        return 0 if self.sentinels is None and self.cluster_nodes is None else 1

    def password(self) -> str | None:
        return self._read_password(self.password_file, "store.password_file")

    def sentinel_password(self) -> str | None:
        return self._read_password(self.sentinel_password_file, "store.sentinel_password_file")

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [self.host_port(a) for a in self.sentinels or ()]

    def cluster_addresses(self) -> list[tuple[str, int]]:
        return [self.host_port(a) for a in self.cluster_nodes or ()]

    @staticmethod
    def host_port(address: str) -> tuple[str, int]:
        """`host:port` or `[v6]:port`, as sentinels and cluster_nodes take them."""
        parts = urlsplit(f"//{address}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port or parts.username or parts.path or parts.query:
            raise ValueError(f"{address!r} is not host:port")
        return parts.hostname, port

    @staticmethod
    def _read_password(path: Path | None, what: str) -> str | None:
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{what}: {path} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{what}: {path} is empty")
        return value


class AuditSettings(Strict):
    # Where audit events go: "-" for standard output, or a file path.
    path: str = "-"


class Config(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    identity_providers: dict[Annotated[str, Field(pattern=NAME)], IdentityProvider] = Field(
        min_length=1
    )
    accounts: dict[Annotated[str, Field(pattern=r"^\d{12}$")], Account] = Field(
        default_factory=dict
    )
    roles: dict[Annotated[str, Field(pattern=NAME)], Role] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("accounts", mode="before")
    @classmethod
    def _account_keys(cls, v: Any) -> Any:
        # YAML reads an unquoted id as an int, and one with a leading 0 as octal: only an
        # unambiguous 12-digit int is taken as is; anything else must be quoted.
        if isinstance(v, dict):
            out: dict[Any, Any] = {}
            for k, a in v.items():
                if isinstance(k, int) and not isinstance(k, bool):
                    if not 10**11 <= k < 10**12:
                        raise ValueError(f"account id {k} must be 12 digits; quote it in YAML")
                    k = str(k)
                out[k] = a
            return out
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems: list[str] = []
        for name, role in self.roles.items():
            part = role.arn.split(":")[1]
            if part != self.aws.partition:
                problems.append(
                    f"roles.{name}.arn is in partition {part}, but aws.partition is {self.aws.partition}"
                )
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}] ({rule.name})"
            if rule.name in seen:
                problems.append(f"{where}: duplicate rule name")
            seen.add(rule.name)
            if rule.idp != "*" and rule.idp not in self.identity_providers:
                problems.append(f"{where}.idp: no identity provider named {rule.idp!r}")
            for item in (*rule.grant, *rule.deny):
                if isinstance(item, str) and item != "*" and item not in self.roles:
                    problems.append(f"{where}: no role named {item!r} in roles")
        if problems:  # all of them at once, so one edit-and-retry fixes everything
            raise ValueError("\n  ".join(problems))
        return self

    @cached_property
    def role_arns(self) -> dict[str, str]:
        return {name: role.arn for name, role in self.roles.items()}

    @cached_property
    def role_names_by_arn(self) -> dict[str, str]:
        return {role.arn: name for name, role in self.roles.items()}

    def account_name(self, account_id: str) -> str | None:
        acct = self.accounts.get(account_id)
        return acct.name if acct else None


# Segments pydantic adds for union members: not keys anyone wrote.
_UNION_PARTS = frozenset({"str", "GrantTemplate"})


def _user_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, p in enumerate(loc):
        text = str(p)
        if text in _UNION_PARTS or text.startswith(("function-", "tagged-union")):
            continue
        # identity_providers.<name>.<type tag>: the tag is the discriminator, not a key.
        if i == 2 and loc[0] == "identity_providers" and text in ("oidc", "saml"):
            continue
        parts.append(text)
    return ".".join(parts)


def _format_errors(exc: ValidationError) -> str:
    errors = exc.errors()
    # For `str | GrantTemplate`, a mapping fails the str branch too: keep the useful error.
    detailed = {_user_path(e["loc"]) for e in errors if e["loc"][-1:] != ("str",)}
    lines: list[str] = []
    for err in errors:
        loc = _user_path(err["loc"])
        if err["loc"][-1:] == ("str",) and any(p.startswith(loc) for p in detailed):
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        line = f"  {loc or '(top level)'}: {msg}"
        if line not in lines:
            lines.append(line)
    return "invalid configuration:\n" + "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_config(data: Any) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("invalid configuration: the file must be a YAML mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the YAML file from `path`, else $BROKER_CONFIG."""
    path = path or os.environ.get("BROKER_CONFIG")
    if not path:
        raise ConfigError("no configuration: pass --config FILE or set BROKER_CONFIG")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data)
