"""`manage.py smoke_test`: after a deploy, is everything a message needs there, and does a message get through?

The checks run in this order, each one line as soon as it is known: the database (reachable, migrated), every
Redis connection (infrastructure, redis_connections), a worker and a dispatcher alive, each provider's
credentials with a call that sends nothing (providers), the webhooks reachable at PUBLIC_BASE_URL (webhooks),
then, for each `--to` target, a real message and its receipt (sends).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .infrastructure import database_check, dispatcher_check, workers_check
from .providers import provider_checks
from .redis_connections import configured_redis_connections, redis_connection_check
from .results import CheckResult, Outcome, guarded, unexpected_failure
from .sends import SmokeTarget, SmokeTargetError, smoke_sends_run, smoke_target_parse
from .webhooks import webhook_checks

__all__ = ["CheckResult", "Outcome", "SmokeTarget", "SmokeTargetError", "smoke_target_parse", "smoke_test_run"]


def smoke_test_run(
    *,
    targets: list[SmokeTarget],
    timeout: float,
    report: Callable[[CheckResult], None],
    progress: Callable[[str], None],
) -> list[CheckResult]:
    """Every check, each result given to `report` as it comes; the targets' messages only through what passed
    (nothing is sent while the database, the queues or the workers fail, nor to a channel whose provider
    refused our credentials)."""
    results: list[CheckResult] = []

    def record(result: CheckResult) -> CheckResult:
        results.append(result)
        report(result)
        return result

    database = record(guarded("database", database_check))
    queues_failed = False
    for name, client_for in configured_redis_connections():
        result = record(guarded(f"redis ({name})", functools.partial(redis_connection_check, name, client_for)))
        queues_failed = queues_failed or (name.startswith("queues") and result.failed)
    workers = record(guarded("workers", workers_check))
    record(guarded("dispatcher", dispatcher_check))
    providers = {channel: record(result) for channel, result in provider_checks().items()}
    for result in webhook_checks():
        record(result)
    if not targets:
        return results

    blocked: dict[str, str] = {}
    if database.failed or queues_failed or workers.failed:
        which = [
            name
            for name, failed in (("database", database.failed), ("queues", queues_failed), ("workers", workers.failed))
            if failed
        ]
        blocked["*"] = f"the {' and '.join(which)} check{'s' if len(which) > 1 else ''} failed, so it could not go out"
    for channel, result in providers.items():
        if result.failed:
            blocked[channel] = f"the {result.name} check failed"
    for result in guarded_sends(targets=targets, timeout=timeout, blocked=blocked, progress=progress):
        record(result)
    return results


def guarded_sends(
    *, targets: list[SmokeTarget], timeout: float, blocked: dict[str, str], progress: Callable[[str], None]
) -> list[CheckResult]:
    """The sends, or one failing line for all of them when storing a message fails (the database went away)."""
    try:
        return smoke_sends_run(targets=targets, timeout=timeout, blocked=blocked, progress=progress)
    except Exception as error:  # as guarded(): a line, not a traceback that hides what was found
        return [unexpected_failure("send", error)]
