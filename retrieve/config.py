"""Engine configs: one YAML or TOML file per engine, checked by pydantic before any request.

An engine config says where the engine is (OpenSearch, Elasticsearch, Solr, any HTTP JSON
endpoint, or a local BM25 ranker over a catalogue file), how a query becomes a request
(a template with `{{query}}`, `{{k}}`, `{{language}}`, `{{query_type}}`), and where raer's
product fields are in a hit. Secrets never sit in the file: `auth` names environment
variables, read when the request is made and never stored or printed; a URL with a user or
password in it is refused. What is stored with a snapshot is the config itself (names of
variables, never values) and its hash, so two snapshots of one config are comparable.

A bad file is one error that names the file and every bad field (`engines.toml: auth.type:
…`), raised before anything is asked or written.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raer.retrieve.template import check_template

PRODUCT_FIELDS = ("product_id", "title", "brand", "colour", "category", "description",
                  "image")


class EngineConfigError(ValueError):
    """An engine or experiment config that cannot be used; the message names file and field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(Strict):
    """Credentials from the environment only: each `*_env` names a variable."""

    type: Literal["basic", "bearer", "api_key", "header"]
    username_env: str = ""
    password_env: str = ""
    token_env: str = ""
    header: str = "Authorization"
    """For type header: the header the token goes in (Algolia: X-Algolia-API-Key)."""

    def model_post_init(self, _: Any) -> None:
        needed = ("username_env", "password_env") if self.type == "basic" else ("token_env",)
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth type {self.type} needs {' and '.join(missing)} (the name "
                             f"of an environment variable, never the secret itself)")


class Fields(Strict):
    """Where each product field is in one hit: a JMESPath expression (`_source.title`,
    `title[0]`, `"product-id"`). A list value is joined with spaces; a number made text."""

    product_id: str
    title: str
    brand: str = ""
    colour: str = ""
    category: str = ""
    description: str = ""
    image: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: Any) -> Any:
        import jmespath

        for path in value.values() if isinstance(value, dict) else [value]:
            if path:
                try:
                    jmespath.compile(path)
                except jmespath.exceptions.ParseError as exc:
                    raise ValueError(f"{path!r} is not a JMESPath expression: {exc}") from exc
        return value


class Operational(Strict):
    """How hard raer may press the engine; not part of a snapshot's identity."""

    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    """Further tries after a timeout, a connection error, 429 or 5xx (backing off)."""
    concurrency: int = Field(4, ge=1, le=64)
    rate_per_s: float | None = Field(None, gt=0)
    verify_tls: bool = True
    ca_file: str = ""
    """A CA bundle for an engine behind a private certificate (instead of verify_tls: false)."""


class Remote(Strict):
    name: str = Field(min_length=1, pattern=r"^[\w.@+-]+$")
    """The engine's name in pairs, evaluations and trends."""
    k: int = Field(10, ge=1, le=1000)
    """Results kept per query (the request's size / rows)."""
    auth: Auth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    """Further request headers (not secrets: those go in auth)."""
    limits: Operational = Operational()

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        secret = [h for h in value if h.lower() in ("authorization", "x-api-key", "cookie")
                  or "key" in h.lower() or "token" in h.lower()]
        if secret:
            raise ValueError(f"{', '.join(secret)}: credentials go in auth (an environment "
                             f"variable's name), never in the file")
        return value


def _check_url(url: str) -> str:
    parts = urlsplit(url.replace("{{", "").replace("}}", ""))
    if parts.username or parts.password:  # checked first: the message must not show it
        raise ValueError("the URL carries a user or password: put credentials in auth (an "
                         "environment variable's name), never in the file")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: an http(s) URL with a host is needed")
    return url


DEFAULT_OS_QUERY = {"query": {"multi_match": {"query": "{{query}}",
                                              "fields": ["title^2", "brand", "description"]}}}


class SearchEngine(Remote):
    """OpenSearch or Elasticsearch: `POST /{index}/_search`, or `_msearch` batches."""

    kind: Literal["opensearch", "elasticsearch"]
    url: str
    index: str = Field(min_length=1, pattern=r"^[^/?#\s]+$")
    query: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_OS_QUERY))
    """The request body; `size` is set to k unless the template sets it."""
    msearch: int = Field(20, ge=0, le=500)
    """Queries per `_msearch` request (0: one `_search` per query)."""
    fields: Fields = Fields(product_id="_id", title="_source.title",
                            brand="_source.brand", colour="_source.colour",
                            category="_source.category",
                            description="_source.description", image="_source.image")

    url_ok = field_validator("url")(lambda cls, v: _check_url(v))
    template_ok = field_validator("query")(lambda cls, v: check_template(v))


class Solr(Remote):
    """Solr: `GET {url}/{collection}/{handler}` with the params below (wt=json)."""

    kind: Literal["solr"]
    url: str
    """The Solr base, e.g. http://localhost:8983/solr."""
    collection: str = Field(min_length=1, pattern=r"^[^/?#\s]+$")
    handler: str = Field("select", pattern=r"^[\w/-]+$")
    params: dict[str, str | int | float | list[str]] = Field(
        default_factory=lambda: {"q": "{{query}}", "defType": "edismax",
                                 "qf": "title^2 brand description"})
    fields: Fields = Fields(product_id="id", title="title", brand="brand", colour="colour",
                            category="category", description="description", image="image")

    url_ok = field_validator("url")(lambda cls, v: _check_url(v))
    template_ok = field_validator("params")(lambda cls, v: check_template(v))


class HttpJson(Remote):
    """Any HTTP JSON endpoint (Algolia, Vespa, an in-house service): a URL template (its
    values URL-encoded), an optional JSON body template, and where the hits are."""

    kind: Literal["http"]
    url: str
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, Any] | None = None
    hits: str
    """JMESPath to the list of hits in the response, e.g. `hits` or `root.children`."""
    fields: Fields

    url_ok = field_validator("url")(lambda cls, v: _check_url(check_template(v)))
    body_ok = field_validator("body")(lambda cls, v: check_template(v))

    @field_validator("hits")
    @classmethod
    def _hits(cls, value: str) -> str:
        Fields._compiles(value)
        return value


class Bm25(Strict):
    """A local BM25 ranker (bm25s) over a catalogue file (JSONL/CSV/Parquet of products):
    the demo's engines, and a baseline any team can run on its own catalogue."""

    kind: Literal["bm25"]
    name: str = Field(min_length=1, pattern=r"^[\w.@+-]+$")
    k: int = Field(10, ge=1, le=1000)
    catalogue: str
    """The products file, relative to this config file."""
    fields: list[Literal["title", "brand", "colour", "category", "description"]] = Field(
        default_factory=lambda: ["title", "brand", "description"], min_length=1)
    boost: dict[str, int] = Field(default_factory=dict)
    """A field's text repeated this many times (BM25 has no field weights of its own)."""
    k1: float = Field(1.5, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stopwords: str = "en"


Engine = Annotated[SearchEngine | Solr | HttpJson | Bm25, Field(discriminator="kind")]


class EngineFile(BaseModel):
    engine: Engine
    path: Path

    def identity(self) -> dict[str, Any]:
        """What decides the results: the config without its operational limits."""
        data = self.engine.model_dump(mode="json", exclude={"limits"})
        if isinstance(self.engine, Bm25):
            catalogue = self.catalogue_path()
            data["catalogue_sha256"] = hashlib.sha256(catalogue.read_bytes()).hexdigest()
        return data

    def config_hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def catalogue_path(self) -> Path:
        assert isinstance(self.engine, Bm25)
        return (self.path.parent / self.engine.catalogue).resolve()


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or TOML (.toml) file as a mapping; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise EngineConfigError(f"{path}: use a .yaml, .yml or .toml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise EngineConfigError(f"{path}: not valid {path.suffix.lstrip('.')}: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineConfigError(f"{path}: expected a mapping of settings at the top")
    return data


def explain(path: Path, exc: ValidationError) -> EngineConfigError:
    """Every problem of a pydantic validation as `file: field.path: message`."""
    lines = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if loc[:1] == ["engine"]:  # ("engine", the kind's tag, field...)
            loc = loc[2:] or ["kind"]
        where = ".".join(loc) or "(file)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
            message = "kind must be one of opensearch, elasticsearch, solr, http, bm25"
        lines.append(f"{path}: {where}: {message}")
    return EngineConfigError("\n".join(lines))


def load_engine(path: str | Path) -> EngineFile:
    path = Path(path)
    data = read_config_file(path)
    try:
        engine = EngineFile.model_validate({"engine": data, "path": path}).engine
    except ValidationError as exc:
        raise explain(path, exc) from None
    if not isinstance(engine, Bm25) and engine.limits.ca_file:
        ca_file = (path.parent / engine.limits.ca_file).resolve()  # relative to the file
        if not ca_file.is_file():
            raise EngineConfigError(f"{path}: limits.ca_file: no such file {ca_file}")
        engine = engine.model_copy(update={"limits": engine.limits.model_copy(
            update={"ca_file": str(ca_file)})})
    loaded = EngineFile(engine=engine, path=path.resolve())
    if isinstance(engine, Bm25) and not loaded.catalogue_path().is_file():
        raise EngineConfigError(f"{path}: catalogue: no such file {loaded.catalogue_path()}")
    return loaded


def load_engines(paths: list[str] | tuple[str, ...]) -> list[EngineFile]:
    """Every config, checked; two engines may not share a name (their results would mix)."""
    problems, engines = [], []
    for path in paths:
        try:
            engines.append(load_engine(path))
        except EngineConfigError as exc:
            problems.append(str(exc))
    names = [e.engine.name for e in engines]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"two engine configs are named {', '.join(dupes)}: give each its own "
                        f"name")
    if problems:
        raise EngineConfigError("\n".join(problems))
    return engines
