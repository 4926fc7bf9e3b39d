"""What archiving keeps in the database: the files it has written, where a pass has got to, and the counts of
archived messages that the campaign and batch pages add to the rows still in the hot tables.

Imported by deliveries.models, so these are deliveries' models; deliveries.services.archive writes them.
"""

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce


class ArchiveFile(models.Model):
    """One archive file (`messages-<day>[-<part>].jsonl.gz`) and how many of its bytes are committed.

    A chunk's gzip member is appended and fsynced first, and `size` moves past it in the transaction that deletes
    the chunk's rows. So bytes beyond `size` belong to a run that died before its commit: the next append cuts
    them off, and no row is ever in the file twice nor missing from both the file and the table."""

    path = models.CharField(max_length=1000, unique=True, help_text="Absolute path on the host that wrote it.")
    day = models.DateField(help_text="The created_at day (UTC) of the messages it holds.")
    size = models.BigIntegerField(default=0, help_text="Bytes committed: what follows is cut off before appending.")
    messages = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)
    erasures_applied = models.BigIntegerField(
        default=0, help_text="The last ArchiveErasure this file was searched for (and rewritten without)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.path} ({self.messages} messages)"


class ArchiveErasure(models.Model):
    """An erased person's address, as a keyed hash (suppression_hashes), that the archive files must not hold.

    An erasure blanks the tables at once; the files are on the dispatchers' disks, so each dispatcher rewrites
    those on its own disk that were written before it (ArchiveFile.erasures_applied), and a restore blanks again
    what a copy made before the erasure brings back. Only messages created before `requested_at` are the erased
    person's: someone who gave their number again after the erasure is messaged, and archived, as anyone."""

    channel = models.CharField(max_length=20)
    address_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the address (suppression_hashes).")
    requested_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"archive erasure #{self.pk} ({self.channel})"


class ArchiveCursor(models.Model):
    """The archiving lock, and where the daily pass of the dispatchers has got to (one row, "messages").

    Every archive chunk and every restore chunk runs holding this row's lock, so they take turns: two dispatchers
    never archive the same rows, and a restore never races an archive. `position_*` is the (created_at, id) below
    which the pass goes on; `finished_at` the end of the last complete pass."""

    name = models.CharField(max_length=40, primary_key=True)
    cutoff = models.DateTimeField(null=True, blank=True, help_text="The pass in progress: messages older than this.")
    position_created_at = models.DateTimeField(null=True, blank=True)
    position_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"archive {self.name}"


class ArchivedMessageTally(models.Model):
    """Archived messages of one campaign or bulk send, counted by status, channel and error code: what the campaign
    page (progress, failures, SMS segments) and the batch figures add to the messages still in the hot tables, so
    archiving changes none of them. Restoring subtracts again. Ids without foreign keys: a tally outlives a deleted
    campaign as the archived messages do."""

    campaign_id = models.BigIntegerField(null=True, blank=True)
    batch_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20)
    channel = models.CharField(max_length=20)
    last_error_code = models.CharField(max_length=50, blank=True)
    messages = models.BigIntegerField(default=0)
    sms_segments = models.BigIntegerField(default=0, help_text="SMS segments of their bodies (sent statuses).")
    error_example = models.TextField(blank=True, help_text="The greatest last_error_message, as the page shows.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Coalesce("campaign_id", Value(0)),
                Coalesce("batch_id", Value(0)),
                F("status"),
                F("channel"),
                F("last_error_code"),
                name="archived_tally_key",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign_id"], name="archived_tally_campaign"),
            models.Index(fields=["batch_id"], name="archived_tally_batch"),
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} batch {self.batch_id} {self.status}: {self.messages}"
