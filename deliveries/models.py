from django.conf import settings
from django.db import models
from django.utils import timezone

from content.models import Channel

# What an erased person's address and the texts that quoted them are replaced with (deliveries.services.erasure).
ERASED = "[erased]"


class Priority(models.TextChoices):
    HIGH = "high", "High"
    DEFAULT = "default", "Default"
    LOW = "low", "Low"


class Status(models.TextChoices):
    """Every change goes through deliveries.state.transition(); see TRANSITIONS there."""

    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # The worker stopped while the provider call was in flight: it may or may not have gone out. A person decides.
    REVIEW = "review", "Needs review"
    # Never sent: the recipient is on the suppression list (opted out, bounced, complained, blocked by hand).
    SUPPRESSED = "suppressed", "Suppressed"
    # Depends on another message and waits for it (deliveries.services.dependencies); nothing of it is in Redis.
    WAITING = "waiting", "Waiting for another message"
    # Held back while its campaign is paused; workers only claim `queued` rows, so a held message is never sent.
    PAUSED = "paused", "Paused"
    # Held back by the cost guard (a spend cap reached, a velocity limit passed): the reason is on its timeline. It
    # waits for a person with permission to release it (or for the cap to be raised), or to cancel it.
    HELD = "held", "Held"


# Statuses a message holds only on its way out, each with an index of its own led by the status (Message.Meta).
# How many times the price job asks the provider for one message's price before it gives up on it.
PRICE_CHECKS_MAX = 5
IN_FLIGHT_STATUSES = [Status.SCHEDULED, Status.WAITING, Status.QUEUED, Status.SENDING]


class DependencyCondition(models.TextChoices):
    """What the parent of a dependent message must do before the dependent one goes (see services.dependencies)."""

    SENT = "sent", "Parent sent"
    DELIVERED = "delivered", "Parent delivered"
    NOT_OPENED = "not_opened", "Parent not opened within the window"
    NOT_CLICKED = "not_clicked", "Parent not clicked within the window"


class Category(models.TextChoices):
    """Marketing messages honour every suppression; transactional ones (one-time codes, receipts) skip opt-outs.

    The default is marketing, so forgetting to choose can only ever mean respecting an opt-out.
    """

    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class Purpose(models.TextChoices):
    """What a transactional message is for, where the cost guard treats it apart (docs/guard.md): a one-time code
    gets the strictest velocity limits, being what SMS pumping sends."""

    OTP = "otp", "One-time code"


class ApiScope(models.TextChoices):
    """What an API key may do (deliveries.api.permissions maps each endpoint to one). `admin` is all of them, and
    also every message and batch, not only the key's own."""

    MESSAGES_SEND = "messages:send", "Send messages (POST /messages/)"
    MESSAGES_READ = "messages:read", "Read its messages and batches"
    MESSAGES_CANCEL = "messages:cancel", "Cancel its messages"
    TEMPLATES_MANAGE = "templates:manage", "Read and write templates"
    CONTACTS_MANAGE = "contacts:manage", "Read and write contacts, lists and segments"
    CAMPAIGNS_MANAGE = "campaigns:manage", "Read, write, launch, pause and cancel campaigns"
    TRANSACTIONAL_SEND = "transactional:send", "Send transactional messages (they reach people who opted out)"
    BATCHES_SEND = "batches:send", "Send batches (POST /messages/batch/)"
    ADMIN = "admin", "Everything, every key's messages included"


class ApiKey(models.Model):
    """An API client. Only a SHA-256 of the key is stored; the key itself is shown once at creation."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, unique=True, help_text="Public part of the key, for lookup.")
    key_hash = models.CharField(max_length=64)
    # A list of ApiScope values. Empty means nothing is allowed: full access is spelled ["admin"].
    scopes = models.JSONField(default=list, blank=True, help_text="What the key may do (ApiScope values).")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never.")
    rate = models.CharField(
        max_length=100, blank=True, help_text="Requests allowed, like 100/second or 10/second;1000/hour; empty: any."
    )
    allowed_senders = models.JSONField(
        default=list, blank=True, help_text="The senders the key may set; empty: any (and the default sender always)."
    )
    # Narrows SMS_ALLOWED_COUNTRIES / WHATSAPP_ALLOWED_COUNTRIES for this key, never widens them (guard.services.
    # destinations): a leaked key of a service that only texts GB customers cannot pump numbers elsewhere.
    allowed_countries = models.JSONField(
        default=list,
        blank=True,
        help_text="ISO codes of the countries the key may send SMS and WhatsApp to; empty: the global lists.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def has_scope(self, scope: str) -> bool:
        scopes = self.scopes
        return ApiScope.ADMIN in scopes or scope in scopes

    # DRF treats request.user as authenticated when this is true.
    is_authenticated = True


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` an API client sent with a create request, and the fingerprint of that request.

    The messages the request created point here (one for `POST /messages/`, many for a batch), so a replay finds
    them. The unique constraint is what makes twenty identical requests arriving at once create one message.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=50, help_text="The endpoint the key was used on, e.g. messages.create.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body, canonical JSON.")
    # Indexed for the reconciler's sweep of keys past IDEMPOTENCY_KEY_TTL_HOURS.
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.scope})"


class Batch(models.Model):
    """One bulk send: a `POST /api/v1/messages/batch/` request or a `send_bulk` run over a CSV file.

    A `send_bulk` run is found again by its key (the file's content hash unless given), so running the same
    file again resumes it instead of sending twice: each row's message carries the dedupe key `<key>:<line>`.
    """

    class Kind(models.TextChoices):
        API = "api", "API batch"
        CSV = "csv", "send_bulk (CSV)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    file_name = models.CharField(max_length=500, blank=True)
    file_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the CSV file.")
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    # An API batch's answer as sent, so a repeat of the request (same Idempotency-Key) can get it again; kept
    # only for requests that gave a key.
    response = models.JSONField(default=dict, blank=True)
    idempotency_key = models.OneToOneField(
        IdempotencyKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "campaigns_batch"  # the table's first name; renaming it would gain nothing
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}" + (f" ({self.key})" if self.key and self.kind == "csv" else "")


class Message(models.Model):
    """One message to one recipient on one channel: the source of truth for its delivery."""

    Channel = Channel
    Status = Status
    Priority = Priority
    Category = Category
    DependencyCondition = DependencyCondition

    channel = models.CharField(max_length=20, choices=Channel.choices)
    recipient = models.CharField(max_length=320, help_text="E.164 phone number or email address.")
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    template = models.ForeignKey(
        "content.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,  # partial index in Meta
    )
    context = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.DEFAULT)
    category = models.CharField(
        max_length=20,
        choices=Category.choices,
        default=Category.MARKETING,
        help_text="Transactional messages are sent to people who opted out of marketing; never to hard bounces.",
    )
    purpose = models.CharField(
        max_length=10,
        choices=Purpose.choices,
        blank=True,
        help_text="A one-time code (transactional only) gets the strictest velocity limits.",
    )
    media_urls = models.JSONField(default=list, blank=True, help_text="MMS / WhatsApp media: public URLs.")
    content_sid = models.CharField(
        max_length=64, blank=True, help_text="Twilio Content SID (HX…) of an approved WhatsApp template."
    )
    content_variables = models.JSONField(default=dict, blank=True, help_text="Variables for the Content template.")
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,  # message_campaign_status (campaign, status) serves lookups by campaign
    )
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    # Set by bulk senders (send_bulk: "<key>:<line>") so that running them again never creates the row twice.
    # Unique where set (Meta.constraints); NULL, not "", is "no key", so keyless messages never collide.
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Send only after another message reached a condition (status `waiting` until then).
    depends_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dependents",
        help_text="The message this one waits for.",
        db_index=False,
    )
    depends_on_condition = models.CharField(max_length=20, choices=DependencyCondition.choices, blank=True)
    depends_on_delay = models.DurationField(
        null=True, blank=True, help_text="How long after the condition is met to send."
    )
    depends_on_window = models.DurationField(
        null=True, blank=True, help_text="Not opened / not clicked: how long the parent has, from its send."
    )
    send_at = models.DateTimeField(null=True, blank=True, help_text="When to send; empty means now.")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Too late after this: fail rather than send (a one-time code, say)."
    )
    # What the guard's price list said it would cost when it was created (guard.services.pricing); NULL: no price.
    estimated_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, blank=True)
    # A person released it from `held`: the spend caps count it but no longer hold it (a person decided).
    guard_released = models.BooleanField(default=False)
    # The spend caps counted its cost: set by the worker's claim, so its own retries are not counted again; cleared
    # by a person's retry or resend, a new send whose cost the caps check again.
    spend_counted = models.BooleanField(default=False)
    # What the provider billed, once it says (deliveries.services.actual_prices; Twilio's `price`, as a positive
    # amount); NULL until then, or for good when it never says. price_checks counts the asks, so one it never
    # answers is asked PRICE_CHECKS_MAX times at most.
    actual_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    actual_cost_currency = models.CharField(max_length=3, blank=True)
    price_checks = models.PositiveSmallIntegerField(default=0)
    provider = models.CharField(max_length=50, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)  # indexed where set (Meta.indexes)
    attempts = models.PositiveIntegerField(default=0)
    last_error_code = models.CharField(max_length=50, blank=True)
    last_error_message = models.TextField(blank=True)

    # Pipeline bookkeeping: the RQ job meant to send this row, and the claim of the worker sending it.
    job_id = models.CharField(max_length=64, blank=True)  # read with the row, never looked up: no index
    claim_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    idempotency_key = models.ForeignKey(
        IdempotencyKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    # Engagement reported by the provider (email opens and clicks), each provider event counted once.
    opens_count = models.PositiveIntegerField(default=0)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    clicks_count = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("cancel_message", "Can cancel messages"),
            ("retry_message", "Can retry failed messages"),
            ("review_message", "Can resolve messages that need review"),
            # The CSV export takes recipients out of the system: a permission of its own, not view_message.
            ("export_message", "Can export messages (CSV, with recipients)"),
            ("release_held_message", "Can release messages held by the cost guard"),
        ]
        # Every index costs work on each INSERT, and on each status change (an update of an indexed column is
        # never HOT, so it adds an entry to every index whose condition the new row meets). Status indexes are
        # therefore kept to the statuses their queries ask for, and columns empty in most rows are indexed only
        # where set: a sent message has entries in the primary key, created_at and the indexes of what it has.
        indexes = [
            # The dispatcher's due scan and next_send_at; the dependency sweep's waiting messages.
            models.Index(
                fields=["status", "send_at"],
                name="message_pending_send_at",
                condition=models.Q(status__in=[Status.SCHEDULED, Status.WAITING]),
            ),
            # The reconciler's stale queued messages and the dispatcher's queued count per channel.
            models.Index(
                fields=["status", "queued_at"], name="message_queued_at", condition=models.Q(status=Status.QUEUED)
            ),
            # Held messages, oldest first, for the queue monitor and for releasing them (few rows: a partial index).
            models.Index(fields=["status", "created_at"], name="message_held", condition=models.Q(status=Status.HELD)),
            # The console's queue monitor: failed messages of a window, grouped by channel and error.
            models.Index(
                fields=["status", "failed_at"], name="message_failed_at", condition=models.Q(status=Status.FAILED)
            ),
            # Lease recovery.
            models.Index(
                fields=["status", "lease_expires_at"],
                name="message_sending_lease",
                condition=models.Q(status=Status.SENDING),
            ),
            models.Index(
                fields=["campaign", "status"],
                name="message_campaign_status",
                condition=models.Q(campaign__isnull=False),
            ),
            # The admin's search by recipient (exact, normalised). recipient never changes, but a status change is
            # never HOT, so each adds an entry to every index its new row belongs to: this one leaves out the
            # statuses a message passes through on its way out (each has its own index, which the search uses for
            # them), so a sent message enters it twice (sent, delivered), not four times. docs/performance.md.
            models.Index(
                fields=["recipient"],
                name="message_recipient_settled",
                condition=~models.Q(status__in=IN_FLIGHT_STATUSES),
            ),
            # The admin's status filter for the statuses a person looks for problems in, newest first. Rows enter
            # it once, on reaching one of them (most never do), so it costs the send path almost nothing.
            models.Index(
                fields=["status", "created_at"],
                name="message_problem_created",
                condition=models.Q(
                    status__in=[Status.FAILED, Status.UNDELIVERED, Status.REVIEW, Status.SUPPRESSED, Status.CANCELLED]
                ),
            ),
            # The price job's sent SMS and WhatsApp messages still without a price: a row enters once sent and
            # leaves once priced or given up on, so the job never scans the messages it is done with.
            models.Index(
                fields=["sent_at"],
                name="message_price_unknown",
                condition=models.Q(
                    actual_cost__isnull=True,
                    price_checks__lt=PRICE_CHECKS_MAX,
                    sent_at__isnull=False,
                    channel__in=[Channel.SMS, Channel.WHATSAPP],
                ),
            ),
            # Provider callbacks find their message by the provider's id.
            models.Index(
                fields=["provider_message_id"],
                name="message_provider_id_set",
                condition=~models.Q(provider_message_id=""),
            ),
            *(
                models.Index(
                    fields=[name], name=f"message_{name}_set", condition=models.Q(**{f"{name}__isnull": False})
                )
                for name in (
                    "template",
                    "batch",
                    "depends_on",
                    "created_by",
                    "api_key",
                    "idempotency_key",
                )
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], name="message_dedupe_key_unique", condition=models.Q(dedupe_key__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} to {self.recipient} ({self.status})"


class MessageEvent(models.Model):
    """One line of a message's timeline: a status change, a provider response or an error."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        PROVIDER = "provider", "Provider response"
        ERROR = "error", "Error"
        NOTE = "note", "Note"
        ENGAGEMENT = "engagement", "Open or click"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STATUS)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    code = models.CharField(max_length=50, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Identifies a provider's report (a status callback, a tracking event), so a replay is recorded only once.
    dedupe_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "dedupe_key"], condition=~models.Q(dedupe_key=""), name="message_event_dedupe"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.from_status}→{self.to_status}"


class Suppression(models.Model):
    """An address on one channel that Tidings must not send to, and why. One row per channel and address.

    The entry of an erased person keeps no address, only `address_hash`, a keyed hash of it
    (deliveries.services.suppression_hashes): their opt-out still holds, and nobody can read who it was.
    """

    class Reason(models.TextChoices):
        OPT_OUT = "opt_out", "Opted out"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        MANUAL = "manual", "Added by hand"

    channel = models.CharField(max_length=20, choices=Channel.choices)
    # NULL, not "", once erased: the unique constraint on address stays whole (NULLs never collide), so the worker's
    # `address = ANY(...)` uses a plain index. Hashes are few: their index is partial (only hashed rows), and the
    # lookup by hash says `address_hash IS NOT NULL` so that the planner takes it.
    address = models.CharField(  # noqa: DJ001
        max_length=320, null=True, blank=True, help_text="E.164 number, email address or Messenger PSID."
    )
    address_hash = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, editable=False, help_text="An erased person's address, as a keyed hash."
    )
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.MANUAL)
    source = models.CharField(max_length=100, blank=True, help_text="Where it came from: a provider, a page, a person.")
    detail = models.TextField(blank=True)
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The message it followed.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="suppression_channel_address"),
            models.UniqueConstraint(
                fields=["channel", "address_hash"],
                condition=models.Q(address_hash__isnull=False),
                name="suppression_channel_address_hash",
            ),
            models.CheckConstraint(
                condition=models.Q(address__isnull=False) | models.Q(address_hash__isnull=False),
                name="suppression_has_address_or_hash",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.address or '(erased person)'} ({self.get_reason_display()})"


class InboundMessage(models.Model):
    """A message a person sent us (an SMS reply, a WhatsApp or Messenger message), kept as received."""

    class Keyword(models.TextChoices):
        NONE = "", "None"
        STOP = "stop", "Opt out"
        START = "start", "Opt back in"
        HELP = "help", "Help"

    channel = models.CharField(max_length=20, choices=Channel.choices)
    sender = models.CharField(max_length=320, help_text="Who wrote: E.164 number or Messenger PSID.")
    recipient = models.CharField(max_length=320, blank=True, help_text="Our number, WhatsApp sender or page.")
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    keyword = models.CharField(max_length=10, choices=Keyword.choices, blank=True)
    provider = models.CharField(max_length=50)
    provider_message_id = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_message_id"], name="inbound_provider_message")
        ]

    def __str__(self) -> str:
        return f"{self.channel} from {self.sender}: {self.body[:40]}"


class ProviderReceipt(models.Model):
    """A provider's report about a message id we have not stored yet (its receipt overtook our worker).

    The worker applies and deletes these right after it records the provider's id for a batch.
    """

    provider = models.CharField(max_length=50)
    provider_message_id = models.CharField(max_length=255)
    report = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["provider", "provider_message_id"], name="receipt_provider_message")]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_message_id}"


# Archiving's own tables (deliveries.services.archive), kept in a module of their own.
from .archive_models import ArchiveCursor, ArchivedMessageTally, ArchiveErasure, ArchiveFile  # noqa: E402, F401

# The audit trail (deliveries.services.audit), in a module of its own.
from .audit_models import AuditEntry  # noqa: E402, F401
