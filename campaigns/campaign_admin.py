"""The campaign admin: edit a draft, launch it after a confirmation that says how many it goes to, pause, resume or
cancel it (each a permission of its own), and follow it on its page: status, progress with a legend, speed and time
remaining, the funnel with its rates, failures by error code, segments, and progress over time.

The page's live panel polls `<id>/progress/` (JSON) while the campaign can change: while it is scheduled, running
or paused, and after completion until its summary went (receipts still arriving, see services.completion).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from deliveries.models import AuditEntry
from deliveries.services.audit import audit_record

from .models import Campaign, CampaignStep
from .selectors import (
    campaign_engagement,
    campaign_failures,
    campaign_funnel,
    campaign_progress,
    campaign_progress_series,
    campaign_reach,
    campaign_segments,
    campaign_spent,
)
from .services.campaign_checks import (
    campaign_format_problems,
    campaign_normalize,
    campaign_problems,
    campaign_warnings,
)
from .services.campaign_cost import CampaignCostEstimate, campaign_cost_estimate
from .services.campaign_drafts import EDITABLE_FIELDS
from .services.campaign_lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from .services.completion import campaign_settling, summary_settle

# The progress bar's parts in the order they are drawn, with colours of the Okabe-Ito palette (told apart with
# any colour vision); the legend names each with its count, so colour is never the only clue.
PROGRESS_PARTS = [
    ("delivered", "Delivered", "#009E73"),
    ("sent_only", "Sent, no receipt yet", "#56B4E9"),
    ("queued", "With the workers", "#E69F00"),
    ("waiting", "Waiting (scheduled or paused)", "#0072B2"),
    ("failed", "Failed or undelivered", "#D55E00"),
    ("suppressed", "Suppressed", "#CC79A7"),
    ("cancelled", "Cancelled", "#999999"),
]
CAMPAIGN_COLOURS: dict[str, str] = {
    Campaign.Status.DRAFT: "#6c757d",
    Campaign.Status.SCHEDULED: "#0072B2",
    Campaign.Status.RUNNING: "#6610f2",
    Campaign.Status.PAUSED: "#b35c00",
    Campaign.Status.COMPLETED: "#007a5a",
    Campaign.Status.CANCELLED: "#6c757d",
}
Action = AuditEntry.Action
# Lifecycle actions: the service, the permission it needs, what to say when it worked, its audit entry, the
# button's label, and whether the button asks for a confirmation first (the two that cannot be undone).
LIFECYCLE = {
    "launch": (campaign_launch, "campaigns.launch_campaign", "launched", Action.CAMPAIGN_LAUNCHED, "Launch…", True),
    "pause": (campaign_pause, "campaigns.pause_campaign", "paused", Action.CAMPAIGN_PAUSED, "Pause", False),
    "resume": (campaign_resume, "campaigns.pause_campaign", "resumed", Action.CAMPAIGN_RESUMED, "Resume", False),
    "cancel": (
        campaign_cancel,
        "campaigns.cancel_campaign",
        "cancelled",
        Action.CAMPAIGN_CANCELLED,
        "Cancel campaign…",
        True,
    ),
}
# The buttons each status offers. A draft is deleted, not "cancelled" (the list action still cancels one).
ACTIONS_BY_STATUS: dict[str, list[str]] = {
    Campaign.Status.DRAFT: ["launch"],
    Campaign.Status.SCHEDULED: ["pause", "cancel"],
    Campaign.Status.RUNNING: ["pause", "cancel"],
    Campaign.Status.PAUSED: ["resume", "cancel"],
}
LIVE_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)


def status_text(campaign: Campaign) -> str:
    if campaign_settling(campaign):
        return "Completed · receipts arriving"
    return campaign.get_status_display()


def campaign_live(campaign: Campaign) -> bool:
    """Whether the page keeps refreshing: the campaign can still change, or its receipts are still coming in."""
    return campaign.status in LIVE_STATUSES or campaign_settling(campaign)


def progress_context(campaign: Campaign, *, funnel: bool = True) -> dict[str, Any]:
    """The counts, the bar's parts and (unless the list asks) the funnel, as the page and the JSON show them."""
    progress = campaign_progress(campaign=campaign)
    progress["sent_only"] = progress["sent"] - progress["delivered"] - progress["by_status"].get("undelivered", 0)
    # Still to go: not yet out (waiting or with the workers) and not yet created by the fan-out.
    progress["remaining"] = progress["waiting"] + progress["queued"] + progress["recipients"] - progress["targeted"]
    total = max(progress["recipients"], progress["targeted"], 1)
    bars = [
        {"key": key, "label": label, "colour": colour, "count": progress[key], "width": 100 * progress[key] / total}
        for key, label, colour in PROGRESS_PARTS
    ]
    context = {"campaign": campaign, "progress": progress, "bars": bars}
    if funnel:
        engagement = campaign_engagement(campaign_id=campaign.pk)
        channel = campaign.template.channel if campaign.template is not None else ""
        context["funnel"] = campaign_funnel(progress=progress, engagement=engagement, channel=channel)
    return context


def draft_estimate(campaign: Campaign) -> CampaignCostEstimate:
    """The draft's estimate, made once for the page (its launch check and its cost table both show it)."""
    if not hasattr(campaign, "_cost_estimate"):
        campaign._cost_estimate = campaign_cost_estimate(campaign=campaign)  # type: ignore[attr-defined]
    return campaign._cost_estimate  # type: ignore[attr-defined]


def cost_context(campaign: Campaign, estimate: CampaignCostEstimate | dict | None, launched: bool) -> dict[str, Any]:
    """The cost table's figures: the estimate, as made at launch once launched."""
    if isinstance(estimate, CampaignCostEstimate):
        estimate = estimate.as_json()
    rows = estimate["by_country"] if estimate else []
    return {
        "campaign": campaign,
        "estimate": estimate,
        "launched": launched,
        "cap": campaign.spend_cap,
        "sms": campaign.template is not None and campaign.template.channel == "sms",
        "priced_recipients": sum(row["recipients"] for row in rows),
        "units": sum(row["segments"] for row in rows),
    }


def details_context(campaign: Campaign, *, sent: int | None = None) -> dict[str, Any]:
    """The page's slower-moving parts: failures by code, segments, and the hourly series for the chart."""
    series = campaign_progress_series(campaign=campaign)
    return {
        "campaign": campaign,
        "failures": campaign_failures(campaign=campaign),
        "segments": campaign_segments(campaign=campaign, sent_count=sent),
        "spent": campaign_spent(campaign=campaign),
        "channel": campaign.template.channel if campaign.template is not None else "",
        "series": [{**point, "hour": point["hour"].isoformat()} for point in series],
    }


def live_state(campaign: Campaign, actions: list[str]) -> dict[str, Any]:
    """What the live panel polls: the status, the buttons that apply, the counts, the bar and the funnel."""
    context = progress_context(campaign)
    settle_until = None
    if campaign_settling(campaign) and campaign.completed_at:
        settle_until = (campaign.completed_at + summary_settle()).isoformat()
    return {
        **context["progress"],
        "status": campaign.status,
        "status_label": status_text(campaign),
        "status_colour": CAMPAIGN_COLOURS.get(campaign.status, "#6c757d"),
        "live": campaign_live(campaign),
        "settle_until": settle_until,
        "actions": actions,
        "bars": [{"key": bar["key"], "count": bar["count"], "width": bar["width"]} for bar in context["bars"]],
        "funnel": context["funnel"],
    }


class CampaignForm(forms.ModelForm):
    """A draft may be incomplete, but what it holds must be usable (the same checks as the API's)."""

    class Meta:
        model = Campaign
        fields = list(EDITABLE_FIELDS)

    def _post_clean(self):
        super()._post_clean()
        campaign_normalize(self.instance)
        for field, texts in campaign_format_problems(self.instance).items():
            self.add_error(field if field in self.fields else None, texts)


class CampaignStepInline(admin.TabularInline):
    """The follow-ups of a multi-step campaign (the campaign's own template is step 0); editable in a draft only,
    like the rest of the campaign."""

    model = CampaignStep
    extra = 0
    fields = ["position", "template", "condition", "delay", "window"]
    verbose_name = "follow-up step"
    verbose_name_plural = "Follow-up steps (each sent to a contact after their previous message meets the condition)"

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Campaign.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._draft(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._draft(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._draft(obj)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns: edit a draft, then launch, pause, resume or cancel it (each a permission of its own), and
    follow it on its page, refreshed every few seconds while it can still change."""

    form = CampaignForm
    inlines = [CampaignStepInline]
    list_display = ["name", "status_label", "schedule_summary", "targeted", "progress_summary", "launched_at"]
    list_filter = ["status", "schedule"]
    search_fields = ["name"]
    list_select_related = ["template"]
    actions = ["launch_selected", "pause_selected", "resume_selected", "cancel_selected"]
    history_fields = [
        "parent",
        "occurrence_at",
        "launched_at",
        "starts_at",
        "paused_at",
        "completed_at",
        "summary_sent_at",
        "cancelled_at",
        "created_by",
        "created_at",
    ]
    readonly_fields = [
        "status_label",
        "progress_panel",
        "launch_problems",
        "cost_panel",
        "next_run_at",
        *history_fields,
    ]
    fieldsets = [
        (None, {"fields": ["name", "status_label", "progress_panel", "launch_problems"]}),
        ("What and to whom", {"fields": ["template", "contact_list", "segment"]}),
        (
            "When",
            {
                "fields": ["schedule", "send_at", "local_time", "local_date", "time_zone", "recurrence", "next_run_at"],
                "description": "Send now, at a time, or at a local time of day in each recipient's time zone "
                "(contacts without one use the campaign's). A cron recurrence ('0 9 * * MON') makes each "
                "occurrence a campaign of its own, sent at once to the audience as it is then.",
            },
        ),
        (
            "Pace",
            {"fields": ["priority", "rate_limit_per_minute", "quiet_hours_start", "quiet_hours_end"]},
        ),
        (
            "Cost",
            {
                "fields": ["cost_panel", "spend_cap"],
                "description": "The price list (Cost guard › Prices) says what each recipient's message costs. "
                "A campaign whose estimate passes its spend cap cannot be launched.",
            },
        ),
        ("History", {"fields": [*history_fields]}),
    ]

    class Media:
        css = {"all": ["campaigns/campaign_page.css"]}

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            # Once launched, what was sent stays what the campaign says it was.
            return [f.name for f in Campaign._meta.fields] + list(self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        # A launched campaign is history: cancel it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Campaign.Status.DRAFT)

    def has_launch_permission(self, request):
        return request.user.has_perm("campaigns.launch_campaign")

    def has_pause_permission(self, request):
        return request.user.has_perm("campaigns.pause_campaign")

    def has_cancel_permission(self, request):
        return request.user.has_perm("campaigns.cancel_campaign")

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj):
        return format_html(
            '<span class="campaign-status" data-campaign-status style="background:{}">{}</span>',
            CAMPAIGN_COLOURS.get(obj.status, "#6c757d"),
            status_text(obj),
        )

    @admin.display(description="When")
    def schedule_summary(self, obj):
        if obj.recurrence:
            return f"Every '{obj.recurrence}' ({obj.time_zone or 'server time'})"
        if obj.schedule == Campaign.Schedule.AT and obj.send_at:
            return f"At {timezone.localtime(obj.send_at):%Y-%m-%d %H:%M}"
        if obj.schedule == Campaign.Schedule.LOCAL_TIME and obj.local_time:
            day = f"{obj.local_date:%Y-%m-%d} " if obj.local_date else ""
            return f"{day}{obj.local_time:%H:%M} recipient's time"
        return "Now"

    @admin.display(description="Progress")
    def progress_summary(self, obj):
        if obj.status == Campaign.Status.DRAFT:
            return "—"
        return render_to_string("admin/campaigns/campaign/progress_bar.html", progress_context(obj, funnel=False))

    @admin.display(description="Recipients and progress")
    def progress_panel(self, obj):
        if obj is None or obj.pk is None:
            return "Save the campaign to see how many it would go to."
        if obj.status == Campaign.Status.DRAFT:
            return render_to_string(
                "admin/campaigns/campaign/reach.html", {"campaign": obj, "reach": campaign_reach(campaign=obj)}
            )
        context = progress_context(obj)
        context.update(details_context(obj, sent=context["progress"]["sent"]))
        context.update(
            url=reverse("admin:campaigns_campaign_progress", args=[obj.pk]),
            details_url=reverse("admin:campaigns_campaign_progress_details", args=[obj.pk]),
            live=campaign_live(obj),
            settling=campaign_settling(obj),
            settle_minutes=round(summary_settle().total_seconds() / 60),
        )
        return render_to_string("admin/campaigns/campaign/progress.html", context)

    @admin.display(description="Before launching")
    def launch_problems(self, obj):
        if obj is None or obj.pk is None or obj.status != Campaign.Status.DRAFT:
            return "—"
        estimate = draft_estimate(obj) if obj.spend_cap is not None else None
        problems = [text for texts in campaign_problems(obj, estimate=estimate).values() for text in texts]
        if not problems:
            return "Ready to launch."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in problems)))

    @admin.display(description="Estimated cost")
    def cost_panel(self, obj):
        if obj is None or obj.pk is None:
            return "Save the campaign to see what it would cost."
        launched = obj.status != Campaign.Status.DRAFT
        estimate = obj.fanout_state.get("estimated_cost") if launched else draft_estimate(obj)
        return render_to_string("admin/campaigns/campaign/cost_estimate.html", cost_context(obj, estimate, launched))

    # --- Lifecycle: list actions and buttons on the campaign page, all through the same services ---

    def _run(self, request, campaigns, name: str) -> None:
        service, _permission, verb, audit_action, _label, _confirm = LIFECYCLE[name]
        done, refused = [], []
        for campaign in campaigns:
            try:
                service(campaign=campaign, by=request.user.get_username())
                audit_record(action=audit_action, target=campaign, request=request)
                done.append(campaign.name)
            except (CampaignStateError, ValidationError) as error:
                reasons = error.messages if isinstance(error, ValidationError) else [str(error)]
                refused.append(f"{campaign.name}: {' '.join(reasons)}")
        if done:
            self.message_user(request, f"{verb.capitalize()}: {', '.join(done)}.", messages.SUCCESS)
        for text in refused:
            self.message_user(request, f"Not {verb}: {text}", messages.ERROR)

    @admin.action(description="Launch selected drafts", permissions=["launch"])
    def launch_selected(self, request, queryset):
        self._run(request, queryset, "launch")

    @admin.action(description="Pause selected campaigns", permissions=["pause"])
    def pause_selected(self, request, queryset):
        self._run(request, queryset, "pause")

    @admin.action(description="Resume selected campaigns", permissions=["pause"])
    def resume_selected(self, request, queryset):
        self._run(request, queryset, "resume")

    @admin.action(description="Cancel selected campaigns (their unsent messages are cancelled)", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        self._run(request, queryset, "cancel")

    def get_urls(self):
        progress = self.admin_site.admin_view(self.progress_view)
        details = self.admin_site.admin_view(self.progress_details_view)
        lifecycle = self.admin_site.admin_view(self.lifecycle_view)
        return [
            path("<int:object_id>/progress/", progress, name="campaigns_campaign_progress"),
            path("<int:object_id>/progress/details/", details, name="campaigns_campaign_progress_details"),
            *(
                path(f"<int:object_id>/{name}/", lifecycle, {"action": name}, name=f"campaigns_campaign_{name}")
                for name in LIFECYCLE
            ),
            *super().get_urls(),
        ]

    def permitted_actions(self, request: HttpRequest, campaign: Campaign) -> list[str]:
        """The lifecycle actions the campaign's status allows and the person may take."""
        return [
            name for name in ACTIONS_BY_STATUS.get(campaign.status, []) if request.user.has_perm(LIFECYCLE[name][1])
        ]

    def progress_view(self, request, object_id):
        """The live panel's figures as JSON, with the buttons that apply now."""
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=object_id)
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        return JsonResponse(live_state(campaign, self.permitted_actions(request, campaign)))

    def progress_details_view(self, request, object_id):
        """The failures, cost and chart of the page, as HTML the live panel puts in place of its own."""
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=object_id)
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        return TemplateResponse(request, "admin/campaigns/campaign/progress_details.html", details_context(campaign))

    def lifecycle_view(self, request, object_id, action):
        """POST: take the action. GET: the confirmation page, saying what the action will do."""
        if not request.user.has_perm(LIFECYCLE[action][1]):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=object_id)
        if request.method == "POST":
            self._run(request, [campaign], action)
            return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        return self.confirmation_page(request, campaign, action)

    def confirmation_page(self, request, campaign: Campaign, action: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{LIFECYCLE[action][4].rstrip('…')} “{campaign.name}”?",
            "campaign": campaign,
            "action": action,
            "verb": LIFECYCLE[action][2],
            "applies": action in ACTIONS_BY_STATUS.get(campaign.status, []),
            "action_url": reverse(f"admin:campaigns_campaign_{action}", args=[campaign.pk]),
            "back_url": reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
            "schedule": self.schedule_summary(campaign),
        }
        if action == "launch":
            estimate = campaign_cost_estimate(campaign=campaign)
            context["reach"] = campaign_reach(campaign=campaign)
            context["problems"] = [
                text for texts in campaign_problems(campaign, estimate=estimate).values() for text in texts
            ]
            context["cost"] = cost_context(campaign, estimate, launched=False)
            context["warnings"] = [] if context["problems"] else campaign_warnings(campaign)
        else:
            context["progress"] = progress_context(campaign, funnel=False)["progress"]
        return TemplateResponse(request, "admin/campaigns/campaign/confirm_action.html", context)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            applicable = self.permitted_actions(request, obj)
            # Every button the person may ever press on a launched campaign is on the page, those that do not apply
            # now hidden: the live panel shows them as the status changes (a pause elsewhere offers Resume).
            names = ["launch"] if obj.status == Campaign.Status.DRAFT else ["pause", "resume", "cancel"]
            context["lifecycle_buttons"] = [
                {
                    "name": name,
                    "label": LIFECYCLE[name][4],
                    "url": reverse(f"admin:campaigns_campaign_{name}", args=[obj.pk]),
                    "confirm": LIFECYCLE[name][5],
                    "hidden": name not in applicable,
                }
                for name in names
                if request.user.has_perm(LIFECYCLE[name][1])
            ]
            if self.has_delete_permission(request, obj):
                context["delete_draft_url"] = reverse("admin:campaigns_campaign_delete", args=[obj.pk])
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)
