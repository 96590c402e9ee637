"""trigger-celery: durable background jobs that call third-party APIs, on Celery and Redis.

Trigger.dev v2's integration-task model in Python: a job is ``run(payload, io, ctx)``; every call
through ``io`` is a task, memoized per run, so a run that resumes replays completed tasks from
Redis instead of running them again.
"""

from trigger_celery._client import TriggerClient
from trigger_celery._concurrency import Concurrency
from trigger_celery._errors import (
    ConfigurationError,
    DuplicateTaskKeyError,
    NonDeterminismError,
    NonRetriableError,
    RetryAfterError,
    RunFailedError,
    RunNotFoundError,
    RunTimeoutError,
    TaskFailedError,
    TaskOutputError,
    TriggerCeleryError,
    UnknownJobError,
    ValidationError,
)
from trigger_celery._execution import Context
from trigger_celery._io import IO
from trigger_celery._jobs import (
    Job,
    cron_trigger,
    event_trigger,
    interval_trigger,
    invoke_trigger,
)
from trigger_celery._ratelimit import RateLimit
from trigger_celery._retry import OnErrorResult, RetryOptions, retry
from trigger_celery._runs import LogEntry, Run, RunHandle, Task
from trigger_celery._settings import Settings
from trigger_celery.integration import TaskInfo

__all__ = [
    "Concurrency",
    "ConfigurationError",
    "Context",
    "DuplicateTaskKeyError",
    "IO",
    "Job",
    "LogEntry",
    "NonDeterminismError",
    "NonRetriableError",
    "OnErrorResult",
    "RateLimit",
    "RetryAfterError",
    "RetryOptions",
    "Run",
    "RunFailedError",
    "RunHandle",
    "RunNotFoundError",
    "RunTimeoutError",
    "Settings",
    "Task",
    "TaskFailedError",
    "TaskInfo",
    "TaskOutputError",
    "TriggerCeleryError",
    "TriggerClient",
    "UnknownJobError",
    "ValidationError",
    "cron_trigger",
    "event_trigger",
    "interval_trigger",
    "invoke_trigger",
    "retry",
]
