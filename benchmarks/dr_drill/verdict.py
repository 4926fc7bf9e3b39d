"""A drill's verdict, computed from two independent records once every message has settled: the database's rows
(what Tidings believes) and the fake provider's receipts (what actually went out). Each message has a number of
its own, so a receipt names its message.

- lost: a message the provider never received, whatever its row says (a `failed` one too: the person was not
  messaged). `sent_but_not_received` counts those whose row even claims they went: the worst kind.
- duplicates: receipts beyond the first for a message.
- in review: a worker stopped during the call, so Tidings asks a person; `in_review_at_provider` of them did go
  out (the person marks them sent), the others did not (the person sends them again, and they count as lost here).
- RTO: from the fault until sending resumed (the end of the first silence after it, see recovery_times); the
  longest silence between receipts from the fault on; the drain, from the fault until nothing is left to send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

# Statuses that mean the provider accepted the message.
SENT_STATUSES = frozenset({"sent", "delivered", "undelivered"})


@dataclass(frozen=True)
class Verdict:
    messages: int
    reached_provider: int
    lost: int
    duplicates: int
    sent_but_not_received: int
    unknown_receipts: int  # receipts for a number no message has: the provider got something we never stored
    in_review: int
    in_review_at_provider: int
    statuses: dict[str, int] = field(default_factory=dict)
    lost_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.messages > 0 and self.lost == 0 and self.duplicates == 0 and self.unknown_receipts == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def judge(rows: Iterable[tuple[int, str, str, int]], receipts: Iterable[tuple[str, float]]) -> Verdict:
    """`rows`: (id, recipient, status, attempts) of every message; `receipts`: (recipient, received_at) of every
    message the provider accepted."""
    rows = list(rows)
    received = Counter(to for to, _ in receipts)
    recipients = {recipient for _, recipient, _, _ in rows}
    lost = [(recipient, status) for _, recipient, status, _ in rows if not received[recipient]]
    review = [recipient for _, recipient, status, _ in rows if status == "review"]
    return Verdict(
        messages=len(rows),
        reached_provider=sum(1 for _, recipient, _, _ in rows if received[recipient]),
        lost=len(lost),
        duplicates=sum(count - 1 for to, count in received.items() if to in recipients and count > 1),
        sent_but_not_received=sum(1 for _, status in lost if status in SENT_STATUSES),
        unknown_receipts=sum(count for to, count in received.items() if to not in recipients),
        in_review=len(review),
        in_review_at_provider=sum(1 for recipient in review if received[recipient]),
        statuses=dict(sorted(Counter(status for _, _, status, _ in rows).items())),
        lost_by_status=dict(sorted(Counter(status for _, status in lost).items())),
    )


# Sending counts as stopped when the provider receives nothing for this long (at the drills' rates a message
# arrives every few milliseconds).
SILENCE_S = 1.0


@dataclass(frozen=True)
class RecoveryTimes:
    rto_s: float | None  # fault -> the end of the first silence after it (0: none; None: nothing sent after it)
    outage_s: float  # fault -> the broken part answered again
    stall_s: float  # the longest silence between receipts, from the fault until the last receipt
    drain_s: float  # fault -> nothing left to send


def recovery_times(
    receipt_times: Iterable[float], *, fault_at: float, back_at: float, settled_at: float
) -> RecoveryTimes:
    """The calls in flight at the fault still land just after it; then, when sending stopped, nothing arrives
    until it starts again. So sending resumed at the end of the first silence of SILENCE_S or more after the
    fault (the calls a worker already had may arrive before the broken part is back, if they did not need it)."""
    after_fault = sorted(at for at in receipt_times if at >= fault_at)
    moments = [fault_at, *after_fault]
    gaps = [(earlier, later) for earlier, later in zip(moments, moments[1:], strict=False)]
    resumed_at = next((later for earlier, later in gaps if later - earlier >= SILENCE_S), fault_at)
    return RecoveryTimes(
        rto_s=round(resumed_at - fault_at, 2) if after_fault else None,
        outage_s=round(back_at - fault_at, 2),
        stall_s=round(max((later - earlier for earlier, later in gaps), default=0.0), 2),
        drain_s=round(settled_at - fault_at, 2),
    )
