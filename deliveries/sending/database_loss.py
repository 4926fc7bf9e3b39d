"""Riding out a lost database connection in the middle of a send job: a PostgreSQL restart or failover, a network
blip, an administrator terminating connections.

The provider calls in flight when the database goes away still come back with answers. Without this the job
failed at its next write, those answers were lost with it, and their messages went to `review` when their lease
ended (a person had to look each one up), while the job's unsent messages waited for the reconciler. Here each
write of the send loop is tried again once the database answers, for up to SEND_DATABASE_WAIT_SECONDS: the
answers are written and the job goes on with its unsent messages.

Every write retried here may be repeated: an outcome is conditioned on its message's status and claim token (a
repeat of one that committed matches nothing; a failure commits with the suppression it may carry), a deferral on
`queued`, early receipts on their dedupe keys, and a claim whose commit the lost connection hid is found again by
its token (`claims.claimed_with_token`). What cannot be repeated (the suppression and spend checks before a claim)
is not retried: an error there fails the job as before, after its calls in flight are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a lost connection raises through Django: OperationalError ("server closed the connection unexpectedly",
# "terminating connection due to administrator command"), InterfaceError ("connection already closed").
LOST = (OperationalError, InterfaceError)
FIRST_PAUSE = 0.25  # seconds; doubled after each failed try, up to MAX_PAUSE
MAX_PAUSE = 2.0


def written_despite_database_loss(write: Callable[[], T], *, what: str) -> T:
    """`write()`, tried again while the database connection is lost, until SEND_DATABASE_WAIT_SECONDS have passed
    (then the last error is raised). Inside a transaction of the caller's nothing is retried: the transaction is
    lost with the connection."""
    deadline = time.monotonic() + settings.SEND_DATABASE_WAIT_SECONDS
    pause, tries = FIRST_PAUSE, 0
    while True:
        try:
            return write()
        except LOST as error:
            # A deadlock, a lock or statement timeout, SQLite's "database is locked": errors of a connection
            # that still works, not retried here (as before).
            if connection.in_atomic_block or connection.is_usable() or time.monotonic() + pause > deadline:
                raise
            tries += 1
            if tries == 1:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                logger.warning("Lost the database while %s (%s); trying again until it answers.", what, reason)
            connection.close()  # the next query connects anew
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)
