"""The reconciler: deliveries' periodic repair and clean-up, one of the dispatcher's DISPATCHER_PERIODIC_TASKS.

Each step is a conditional UPDATE or a bounded DELETE, safe to run in several dispatchers at once; together they
put right what a crash, a lost Redis or the clock left behind, and keep the bookkeeping tables small.
"""

from __future__ import annotations

import logging

from .audit import audit_entries_prune
from .dependencies import dependencies_sweep
from .dispatch import requeue_orphaned_messages
from .feedback import receipts_prune
from .idempotency import idempotency_keys_prune
from .recovery import fail_expired_messages, recover_expired_leases

logger = logging.getLogger("deliveries.dispatcher")


def reconcile() -> None:
    """Re-queue what Redis forgot, fail what is past its deadline, settle interrupted sends, prune receipts,
    idempotency keys and audit entries past their time, and release or cancel dependents whose parent is done."""
    requeue_orphaned_messages()
    fail_expired_messages()
    recovered = recover_expired_leases()
    if recovered["review"]:
        logger.warning("%s message(s) interrupted mid-call need review", recovered["review"])
    if recovered["resent"]:
        logger.warning("%s message(s) interrupted mid-call will be sent again", recovered["resent"])
    receipts_prune()
    idempotency_keys_prune()
    audit_entries_prune()
    dependencies_sweep()
