"""Jobs and their triggers: ``event_trigger``, ``invoke_trigger``, ``cron_trigger``,
``interval_trigger`` (Trigger.dev v2's ``eventTrigger``, ``invokeTrigger``, ``cronTrigger``,
``intervalTrigger``). Everything is checked when it is declared.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from trigger_celery._concurrency import Concurrency, check_concurrency
from trigger_celery._errors import ConfigurationError, ValidationError
from trigger_celery._validation import describe_errors

# Semantic Versioning 2.0.0, the regular expression semver.org recommends.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")

INTERVAL_MIN_S = 20
INTERVAL_MAX_S = 30 * 24 * 3600


def _check_schema(schema: Any) -> type[BaseModel] | None:
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise ConfigurationError(f"schema must be a pydantic BaseModel subclass, got {schema!r}")
    return schema


def _check_filter(flt: Any, path: str = "filter") -> None:
    if not isinstance(flt, dict):
        raise ConfigurationError(f"{path} must be a dict, got {type(flt).__name__}")
    for k, v in flt.items():
        if isinstance(v, dict):
            _check_filter(v, f"{path}.{k}")
        elif not isinstance(v, list):
            raise ConfigurationError(
                f"{path}.{k} must be a list of allowed values or a nested dict, got {v!r}"
            )


def filter_matches(flt: dict[str, Any] | None, payload: Any) -> bool:
    """Trigger.dev's EventFilter: every key must match; a list leaf lists the allowed values."""
    if not flt:
        return True
    if not isinstance(payload, dict):
        return False
    for k, expected in flt.items():
        actual = payload.get(k)
        if isinstance(expected, dict):
            if not filter_matches(expected, actual):
                return False
        elif actual not in expected:
            return False
    return True


@dataclass(frozen=True)
class EventTrigger:
    """Runs the job for each event named ``name`` whose payload passes ``filter``."""

    name: str
    schema: type[BaseModel] | None = None
    filter: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {"type": "event", "name": self.name, "filter": self.filter}


@dataclass(frozen=True)
class InvokeTrigger:
    """Runs the job only when ``client.trigger(job_id, payload)`` is called."""

    schema: type[BaseModel] | None = None

    def describe(self) -> dict[str, Any]:
        return {"type": "invoke"}


@dataclass(frozen=True)
class CronTrigger:
    """Runs the job on a five-field cron expression, in UTC, scheduled by Celery beat."""

    cron: str
    schedule: crontab = field(compare=False, repr=False, default=None)
    schema: None = None

    def describe(self) -> dict[str, Any]:
        return {"type": "cron", "cron": self.cron}


@dataclass(frozen=True)
class IntervalTrigger:
    """Runs the job every ``seconds`` (20 s to 30 days), scheduled by Celery beat."""

    seconds: int
    schema: None = None

    def describe(self) -> dict[str, Any]:
        return {"type": "interval", "seconds": self.seconds}


Trigger = EventTrigger | InvokeTrigger | CronTrigger | IntervalTrigger


def event_trigger(
    name: str, *, schema: type[BaseModel] | None = None, filter: dict[str, Any] | None = None
) -> EventTrigger:
    """Trigger on events named ``name``.

    Parameters:
        name: the event name (``github.issues.opened``).
        schema: pydantic model the payload must satisfy; the job receives an instance.
        filter: Trigger.dev EventFilter, a nested dict mirroring the payload whose leaves are
            lists of allowed values: ``{"repository": {"full_name": ["octo/hello"]}}``.

    Raises:
        ConfigurationError: a bad name, schema or filter.
    """
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise ConfigurationError(f"event_trigger: invalid event name {name!r}")
    if filter is not None:
        _check_filter(filter)
    return EventTrigger(name=name, schema=_check_schema(schema), filter=filter)


def invoke_trigger(*, schema: type[BaseModel] | None = None) -> InvokeTrigger:
    """Trigger only by ``client.trigger``; ``schema`` validates the payload at enqueue time."""
    return InvokeTrigger(schema=_check_schema(schema))


def cron_trigger(cron: str) -> CronTrigger:
    """Trigger on a cron expression (minute hour day-of-month month day-of-week), in UTC.

    Raises:
        ConfigurationError: the expression does not have five valid fields.
    """
    parts = cron.split() if isinstance(cron, str) else []
    if len(parts) != 5:
        raise ConfigurationError(f"cron_trigger: {cron!r} must have 5 fields")
    try:
        sched = crontab(
            minute=parts[0], hour=parts[1], day_of_month=parts[2],
            month_of_year=parts[3], day_of_week=parts[4],
        )
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise ConfigurationError(f"cron_trigger: invalid expression {cron!r}: {exc}") from None
    return CronTrigger(cron=cron, schedule=sched)


def interval_trigger(seconds: int) -> IntervalTrigger:
    """Trigger every ``seconds`` seconds (20 s to 30 days, Trigger.dev's bounds)."""
    if not isinstance(seconds, int) or not INTERVAL_MIN_S <= seconds <= INTERVAL_MAX_S:
        raise ConfigurationError(
            f"interval_trigger: seconds must be an int from {INTERVAL_MIN_S} to {INTERVAL_MAX_S}, "
            f"got {seconds!r}"
        )
    return IntervalTrigger(seconds=seconds)


@dataclass
class Job:
    """A defined job. ``run(payload, io, ctx)`` is the user's function."""

    id: str
    name: str
    version: str
    trigger: Trigger
    run: Callable[..., Any]
    integrations: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    #: Fail runs whose replay differs from their records; ``None``: the ``strict_replay``
    #: setting decides.
    strict_replay: bool | None = None
    #: Limits on the job's dispatched calls, counted per job across all its runs.
    rate_limits: tuple[Any, ...] = ()
    #: at most ``limit`` runs (per key) execute at once (:mod:`trigger_celery._concurrency`)
    concurrency: Concurrency | None = None

    @property
    def schema(self) -> type[BaseModel] | None:
        return self.trigger.schema

    def parse_payload(self, payload: Any) -> Any:
        """Validate ``payload`` against the trigger's schema.

        Returns the model instance, or the payload unchanged when there is no schema.

        Raises:
            ValidationError: naming the job, each failing field and its problem.
        """
        if self.schema is None:
            return payload
        try:
            return self.schema.model_validate(payload)
        except PydanticValidationError as exc:
            problems = describe_errors(exc)
            raise ValidationError(f"job {self.id!r}: payload invalid: {problems}") from None

    def describe(self) -> dict[str, Any]:
        """What workers publish to Redis so enqueuers need not import the job."""
        return {
            "id": self.id, "name": self.name, "version": self.version,
            "trigger": self.trigger.describe(),
            "schema": self.schema.model_json_schema() if self.schema else None,
            "integrations": sorted(self.integrations),
            "concurrency": self.concurrency.describe() if self.concurrency else None,
        }


def validate_published(job_id: str, schema: dict[str, Any] | None, payload: Any) -> None:
    """Check ``payload`` (JSON data) against a job's published JSON schema (``describe()``'s
    ``schema``, a pydantic ``model_json_schema()``), for enqueuers that do not import the job.

    Raises:
        ValidationError: naming the job, each failing field and its problem, in the same
            ``job 'id': payload invalid: field: problem`` form as :meth:`Job.parse_payload`.
    """
    if not schema:
        return
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors)
        raise ValidationError(f"job {job_id!r}: payload invalid: {problems}")


def make_job(
    *,
    id: str,
    name: str,
    version: str,
    trigger: Any,
    run: Callable[..., Any],
    integrations: dict[str, Any] | None,
    enabled: bool,
    strict_replay: bool | None = None,
    rate_limits: Any = (),
    concurrency: Any = None,
) -> Job:
    """Check a job definition; raises :class:`ConfigurationError` naming what is wrong."""
    from trigger_celery.integration import Integration

    if not isinstance(id, str) or not _JOB_ID.match(id):
        raise ConfigurationError(
            f"define_job: id {id!r} must be lowercase letters, digits, '.', '_' or '-'"
        )
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise ConfigurationError(f"define_job({id!r}): version {version!r} is not semver (1.2.3)")
    if not isinstance(trigger, EventTrigger | InvokeTrigger | CronTrigger | IntervalTrigger):
        raise ConfigurationError(
            f"define_job({id!r}): trigger must come from event_trigger, invoke_trigger, "
            f"cron_trigger or interval_trigger, got {trigger!r}"
        )
    if inspect.iscoroutinefunction(run):
        raise ConfigurationError(
            f"define_job({id!r}): async def jobs are not supported; write a plain function "
            "(async callbacks inside io.run_task are awaited)"
        )
    integrations = dict(integrations or {})
    for key, integ in integrations.items():
        if not isinstance(integ, Integration):
            raise ConfigurationError(
                f"define_job({id!r}): integrations[{key!r}] must be an Integration, got {integ!r}"
            )
        if not key.isidentifier() or key.startswith("_") or key in _IO_NAMES:
            raise ConfigurationError(
                f"define_job({id!r}): integrations key {key!r} must be an identifier not "
                f"clashing with io's own names"
            )
    if strict_replay is not None and not isinstance(strict_replay, bool):
        raise ConfigurationError(f"define_job({id!r}): strict_replay must be True, False or None")
    from trigger_celery._ratelimit import RateLimit

    limits = tuple(rate_limits or ())
    if not all(isinstance(limit, RateLimit) for limit in limits):
        raise ConfigurationError(f"define_job({id!r}): rate_limits must be RateLimit objects")
    return Job(id=id, name=name, version=version, trigger=trigger, run=run,
               integrations=integrations, enabled=enabled, strict_replay=strict_replay,
               rate_limits=limits, concurrency=check_concurrency(id, concurrency))


_IO_NAMES = frozenset({"run_task", "wait", "try_", "logger", "random", "send_event", "run_id"})
