"""The integration authoring API: ``Integration``, ``Namespace`` and ``@operation``.

Ported from Trigger.dev v2's integration model (``@trigger.dev/integration-kit``): an integration
wraps an official SDK, exposes its methods 1:1 as tasks under namespaces
(``io.github.issues.create``),
gives the authenticated client to user code through ``io.<name>.run_task``, and turns provider
errors into retry decisions with ``on_error``.

An integration is declared like this (see ``docs/writing-an-integration.md``)::

    class Issues(Namespace):
        name = "issues"

        @operation(params=CreateIssue, display="Create issue {title}",
                   properties=lambda p: [{"label": "Repo", "text": f"{p.owner}/{p.repo}"}])
        def create(client: Github, params: CreateIssue, task: TaskInfo) -> dict:
            repo = client.get_repo(f"{params.owner}/{params.repo}", lazy=True)
            return repo.create_issue(title=params.title).raw_data

    class GitHub(Integration):
        id = "github"
        icon = "github"
        retry = retry_presets.standard_backoff
        namespaces = (Issues, ...)
        credential_env = "GITHUB_TOKEN"

        def create_client(self, credential: str) -> Github: ...
        def on_error(self, error, task, io): ...

Everything declared here is plain data; the engine registers one Celery task per operation, named
``<integration id>.<namespace>.<method>``.

This module is the public contract between the core and the integration packages
(``trigger_celery_github``, ``trigger_celery_openai``, ``trigger_celery_typeform`` and yours):
integrations import from ``trigger_celery`` and ``trigger_celery.integration`` only, never from a
``trigger_celery._...`` module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from trigger_celery._errors import ConfigurationError, ValidationError
from trigger_celery._http import parse_retry_after
from trigger_celery._ratelimit import RateLimit
from trigger_celery._retry import OnErrorResult, RetryOptions
from trigger_celery._time import aware, utc_now
from trigger_celery._validation import StrictModel, describe_errors

__all__ = [
    "Compound",
    "Integration",
    "Namespace",
    "Operation",
    "OperationResult",
    "RateLimit",
    "StrictModel",
    "TaskInfo",
    "aware",
    "compound",
    "describe_errors",
    "operation",
    "parse_retry_after",
    "runs_answer",
    "utc_now",
]

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class TaskInfo:
    """What a task knows about itself; handed to operations and ``on_error`` hooks.

    Attributes:
        run_id: the run the task belongs to.
        key: the task's key, as the job wrote it.
        idempotency_key: SHA-256 hex of (run id, parent task id, key); stable across attempts.
            Send it to providers that accept one (OpenAI's ``Idempotency-Key``).
        name: the task's display name (``github.issues.create`` for operations).
        attempts: executions so far, this one included (1 on the first).
        params: the task's params as stored (JSON), before redaction.
    """

    run_id: str
    key: str
    idempotency_key: str
    name: str
    attempts: int
    params: Any = None
    properties: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OperationResult:
    """An operation's output together with display properties learned from the response.

    An operation returns either its output (JSON) or an ``OperationResult``; the engine unwraps it,
    stores ``output`` as the task's output and appends ``properties`` (``{"label": str, "text":
    str}`` each) to the task's display properties. Used for what only the response tells, such as
    OpenAI's rate-limit headers and token usage (Trigger.dev's ``createTaskOutputProperties``).

    Attributes:
        output: the API's own object as JSON (``dict``/``list``).
        properties: extra display properties, in order.
    """

    output: Any
    properties: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Declared(Generic[P]):
    """What operations and compound tasks share: params model and display."""

    method: str
    params: type[P]
    display: str | Callable[[P], str] | None
    properties: Callable[[P], list[dict[str, Any]]] | None

    def validate(self, qualified_name: str, raw: dict[str, Any]) -> P:
        """Validate call params; raises :class:`ValidationError` naming the field and problem."""
        try:
            return self.params.model_validate(raw)
        except PydanticValidationError as exc:
            problems = describe_errors(exc, root="(params)")
            raise ValidationError(f"{qualified_name}: invalid params: {problems}") from None

    def display_name(self, params: P) -> str:
        if self.display is None:
            return self.method
        if callable(self.display):
            return self.display(params)
        return self.display.format(**params.model_dump())

    def display_properties(self, params: P) -> list[dict[str, Any]]:
        return self.properties(params) if self.properties else []


@dataclass(frozen=True)
class Operation(_Declared[P]):
    """One SDK method exposed as a dispatched task. Build with :func:`operation`."""

    fn: Callable[[Any, P, TaskInfo], Any] = field(default=lambda c, p, t: None)
    redact: tuple[str, ...] = ()


@dataclass(frozen=True)
class Compound(_Declared[P]):
    """A task made of other tasks of its integration (Trigger.dev's compound tasks such as
    ``createCommentWithReaction``). It runs inside the run as a parent task; the calls it makes
    through ``integration_io`` (the run's ``io.<name>``) are its subtasks. Build with
    :func:`compound`."""

    fn: Callable[[Any, P], Any] = field(default=lambda i, p: None)


def operation(
    *,
    params: type[P],
    display: str | Callable[[P], str] | None = None,
    properties: Callable[[P], list[dict[str, Any]]] | None = None,
    redact: tuple[str, ...] = (),
) -> Callable[[Callable[[Any, P, TaskInfo], Any]], Operation[P]]:
    """Declare a namespace method as a task.

    Parameters:
        params: pydantic model of the method's keyword params; validated at the call, before any
            HTTP, so a bad param fails with its field named.
        display: the task's display name, a ``str.format`` template over the params or a callable.
        properties: params -> list of ``{"label": str, "text": str}`` shown in run timelines and
            in Flower (Trigger.dev's task ``properties``).
        redact: dotted paths into the params whose values are stored as ``"[redacted]"``.

    The decorated function is ``fn(client, params, task) -> JSON`` and must return the API's own
    object as JSON (``dict``/``list``), e.g. PyGithub's ``raw_data``, or an
    :class:`OperationResult` wrapping it with properties read from the response.
    """

    def wrap(fn: Callable[[Any, P, TaskInfo], Any]) -> Operation[P]:
        return Operation(
            method=fn.__name__, fn=fn, params=params, display=display,
            properties=properties, redact=redact,
        )

    return wrap


def compound(
    *,
    params: type[P],
    display: str | Callable[[P], str] | None = None,
    properties: Callable[[P], list[dict[str, Any]]] | None = None,
) -> Callable[[Callable[[Any, P], Any]], Compound[P]]:
    """Declare a namespace method made of other tasks: ``fn(integration_io, params) -> JSON``,
    where ``integration_io.<namespace>.<method>(key, ...)`` calls are its subtasks."""

    def wrap(fn: Callable[[Any, P], Any]) -> Compound[P]:
        return Compound(method=fn.__name__, fn=fn, params=params, display=display,
                        properties=properties)

    return wrap


class Namespace:
    """A group of operations, one class per module (``integrations/github/issues.py``)."""

    name: ClassVar[str]

    @classmethod
    def operations(cls) -> dict[str, Operation[Any]]:
        return {k: v for k, v in vars(cls).items() if isinstance(v, Operation)}

    @classmethod
    def compounds(cls) -> dict[str, Compound[Any]]:
        return {k: v for k, v in vars(cls).items() if isinstance(v, Compound)}


_CONNECTION_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class Integration:
    """Base class of every integration. Subclasses set the class attributes and override hooks.

    Class attributes:
        id: the integration's id, first part of its task names and its default queue (``github``).
        icon: icon name shown with its tasks.
        retry: default :class:`RetryOptions` of its tasks.
        namespaces: the :class:`Namespace` classes it exposes.
        credential_env: environment variable holding the credential (token or API key). With a
            ``connection_key``, ``<credential_env>_<CONNECTION_KEY>`` is read instead.
        default_rate_limits: the provider's documented fixed limits (:class:`RateLimit`), used
            when the constructor gets no ``rate_limits``.

    Parameters:
        connection_key: names this connection (default: ``id``); tells apart two accounts of one
            provider and selects the credential's environment variable.
        credential: the token or API key itself. It stays in the process that built the
            integration: never sent in a message, never written to Redis.
        queue: Celery queue of this integration's tasks (default: ``id``).
        rate_limits: limits enforced before each call, shared by every worker through Redis and
            keyed by this connection's credential (``connection_key`` plus a hash of the
            credential); default ``default_rate_limits``; ``()`` turns them off. A task over a
            limit waits for its slot without holding a worker or using its retries.
    """

    id: ClassVar[str]
    icon: ClassVar[str] = ""
    retry: ClassVar[RetryOptions] = RetryOptions()
    namespaces: ClassVar[tuple[type[Namespace], ...]] = ()
    credential_env: ClassVar[str] = ""
    default_rate_limits: ClassVar[tuple[RateLimit, ...]] = ()

    def __init__(
        self,
        *,
        connection_key: str | None = None,
        credential: str | None = None,
        queue: str | None = None,
        rate_limits: Sequence[RateLimit] | None = None,
    ) -> None:
        self.connection_key = connection_key or self.id
        if not _CONNECTION_KEY.match(self.connection_key):
            raise ConfigurationError(
                f"{type(self).__name__}: connection_key {self.connection_key!r} must match "
                f"{_CONNECTION_KEY.pattern}"
            )
        self.queue = queue or self.id
        limits = self.default_rate_limits if rate_limits is None else tuple(rate_limits)
        if not all(isinstance(limit, RateLimit) for limit in limits):
            raise ConfigurationError(f"{type(self).__name__}: rate_limits must be RateLimit "
                                     f"objects, got {limits!r}")
        self.rate_limits: tuple[RateLimit, ...] = limits
        self._credential = credential
        self._client: Any = None

    def __repr__(self) -> str:  # never shows the credential
        name = type(self).__name__
        return f"{name}(connection_key={self.connection_key!r}, queue={self.queue!r})"

    # -- credentials and client --------------------------------------------------------------

    @property
    def credential_env_var(self) -> str:
        if self.connection_key == self.id:
            return self.credential_env
        return f"{self.credential_env}_{self.connection_key.upper().replace('-', '_')}"

    def credential(self) -> str:
        """The credential: the constructor's, else the environment variable's.

        Raises:
            ConfigurationError: neither is set.
        """
        value = self._credential or os.environ.get(self.credential_env_var)
        if not value:
            raise ConfigurationError(
                f"{self.id}: no credential; pass credential=... or set {self.credential_env_var}"
            )
        return value

    def client(self) -> Any:
        """The SDK client, built once per process from :meth:`credential`."""
        if self._client is None:
            self._client = self.create_client(self.credential())
        return self._client

    def create_client(self, credential: str) -> Any:
        """Build the authenticated SDK client. Override."""
        raise NotImplementedError

    # -- hooks -------------------------------------------------------------------------------

    def on_error(
        self, error: BaseException, task: TaskInfo, io: Any
    ) -> OnErrorResult | BaseException | None:
        """Decide what a failed task does next (Trigger.dev's integration ``onError``).

        Returns ``None`` (the retry policy applies), an exception (replaces the error) or an
        :class:`OnErrorResult` (``retry_at``, ``skip_retrying``, ``error``). ``io`` is the run's
        IO for inline tasks and ``None`` for dispatched ones.
        """
        return None

    def rate_limit_closed_until(self, error: BaseException | None) -> float | None:
        """After each attempt of a dispatched task (``error`` is ``None`` when it succeeded):
        the time (epoch seconds) until which the provider said this connection has no requests
        left, e.g. ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``; ``None`` when it did
        not say so. Every worker then holds this connection's calls until that time. Override
        where the SDK exposes the response headers; the default returns ``None``."""
        return None

    def rate_limits_for(self, qname: str) -> tuple[RateLimit, ...]:
        """The limits that apply to the operation ``qname`` (``issues.create``)."""
        return tuple(limit for limit in self.rate_limits
                     if limit.operations is None or qname in limit.operations)

    # -- introspection -----------------------------------------------------------------------

    @classmethod
    def operations(cls) -> dict[str, Operation[Any]]:
        """``{"issues.create": Operation, ...}`` for every namespace."""
        return cls._declared("_operations", lambda ns: ns.operations())

    @classmethod
    def compounds(cls) -> dict[str, Compound[Any]]:
        """``{"issues.create_comment_with_reaction": Compound, ...}`` for every namespace."""
        return cls._declared("_compounds", lambda ns: ns.compounds())

    @classmethod
    def _declared(cls, cache: str, of: Callable[[type[Namespace]], dict[str, Any]]
                  ) -> dict[str, Any]:
        """Qualified name -> declaration, computed once per class (looked up on every call)."""
        found: dict[str, Any] | None = cls.__dict__.get(cache)
        if found is None:
            found = {f"{ns.name}.{method}": d
                     for ns in cls.namespaces for method, d in of(ns).items()}
            setattr(cls, cache, found)
        return found


def runs_answer(result: Any) -> dict[str, Any]:
    """What a webhook receiver's answer says about the runs ``send_event`` returned
    (:meth:`TriggerClient.send_event`: a list of run handles): ``{"runs": [{"id": "run_…",
    "duplicate": false}], "duplicate": false}``. ``duplicate`` marks a run an earlier delivery
    with the same id already started (a redelivery starts none); the top-level one is true when
    every run is."""
    handles = result if isinstance(result, list | tuple) else []
    runs = [{"id": str(h.id), "duplicate": not getattr(h, "created", True)}
            for h in handles if getattr(h, "id", None)]
    return {"runs": runs, "duplicate": bool(runs) and all(r["duplicate"] for r in runs)}
