"""Every Prometheus metric, defined once, on a registry the caller owns (no global registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_RESPONSE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    messages_received: Counter
    webhook_rejections: Counter
    decisions: Counter
    decision_rules: Counter
    holding_replies: Counter
    urgent_off_hours: Counter
    coalesced: Counter
    policy_reloads: Counter
    classifications: Counter
    risk_flags: Counter
    sentiments: Counter
    languages: Counter
    replies_sent: Counter
    replies_failed: Counter
    stage_duration: Histogram
    first_response: Histogram
    reclaimed: Counter
    dead_letters: Counter
    review_actions: Counter
    auth_failures: Counter
    review_outcomes: Counter
    shadow_agreement: Counter
    review_queue: Gauge
    review_oldest: Gauge
    review_overdue: Gauge
    sla_breaches: Counter
    queue_lag: Gauge
    queue_pending: Gauge
    queue_oldest: Gauge
    incident_active: Gauge  # the incident brake raises it (1) per topic and lowers it (0) when it is over
    incidents_raised: Counter
    llm_requests: Counter
    llm_duration: Histogram
    llm_tokens: Counter
    llm_cost: Counter
    llm_circuit: Gauge
    drafts: Counter
    model_load: Gauge


def create_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Build every metric on `registry` (a fresh one by default, so each app and test counts alone)."""
    r = registry or CollectorRegistry()
    p = "autoresponder_"
    return Metrics(
        registry=r,
        messages_received=Counter(p + "messages_received", "Messages accepted from webhooks.", ["channel"], registry=r),
        webhook_rejections=Counter(
            p + "webhook_rejections", "Webhook requests refused.", ["channel", "reason"], registry=r
        ),
        decisions=Counter(p + "decisions", "Pipeline decisions, by intent.", ["action", "intent"], registry=r),
        decision_rules=Counter(
            p + "decision_rules",
            "Rules that fired in decisions, by the action taken and the rule's kind (risk, intent_mode, draft, ...).",
            ["action", "rule"],
            registry=r,
        ),
        holding_replies=Counter(
            p + "holding_replies", "Holding replies sent while reviewers were off.", ["channel"], registry=r
        ),
        urgent_off_hours=Counter(
            p + "urgent_off_hours", "Urgent cases that arrived while reviewers were off: page someone.", registry=r
        ),
        coalesced=Counter(p + "messages_coalesced", "Messages answered together with a later one.", registry=r),
        policy_reloads=Counter(
            p + "policy_reloads", "Policy reloads: applied, or rejected (the old one runs on).", ["outcome"], registry=r
        ),
        classifications=Counter(
            p + "classifications", "Messages classified, by intent (`unknown`: matched none).", ["intent"], registry=r
        ),
        risk_flags=Counter(p + "risk_flags", "Risk flags raised, by kind.", ["flag"], registry=r),
        sentiments=Counter(p + "sentiments", "Messages classified, by sentiment.", ["sentiment"], registry=r),
        languages=Counter(
            p + "languages",
            "Messages classified, by language (`en` unless the model can't read it; `und`: another, unnamed).",
            ["language"],
            registry=r,
        ),
        replies_sent=Counter(p + "replies_sent", "Replies delivered to a platform.", ["channel"], registry=r),
        replies_failed=Counter(
            p + "replies_failed", "Reply delivery attempts that failed.", ["channel", "outcome"], registry=r
        ),
        stage_duration=Histogram(
            p + "stage_duration_seconds",
            "Time in each pipeline stage.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        first_response=Histogram(
            p + "first_response_seconds",
            "From a message's arrival to its reply's delivery.",
            ["channel", "origin"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        ),
        reclaimed=Counter(
            p + "messages_reclaimed", "Pending messages taken over from a dead consumer.", ["stream"], registry=r
        ),
        dead_letters=Counter(p + "dead_letters", "Messages or replies given up on.", ["stream"], registry=r),
        review_actions=Counter(p + "review_actions", "Reviewer actions.", ["action"], registry=r),
        review_queue=Gauge(
            p + "review_queue_cases", "Cases waiting for a reviewer, by priority.", ["priority"], registry=r
        ),
        review_oldest=Gauge(
            p + "review_oldest_case_seconds", "Age of the oldest waiting case, by priority.", ["priority"], registry=r
        ),
        review_overdue=Gauge(p + "review_overdue_cases", "Waiting cases past their SLA deadline.", registry=r),
        sla_breaches=Counter(
            p + "sla_breaches",
            "Review cases that missed their deadline, counted once per case: seen waiting past it, or resolved after.",
            ["priority"],
            registry=r,
        ),
        queue_lag=Gauge(
            p + "queue_lag_messages",
            "Stream entries no consumer has read yet (inbound: messages for the workers; outbox: replies to send).",
            ["stream"],
            registry=r,
        ),
        queue_pending=Gauge(
            p + "queue_pending_messages",
            "Stream entries a consumer has read and not finished (in hand, or a dead consumer's, to be reclaimed).",
            ["stream"],
            registry=r,
        ),
        queue_oldest=Gauge(
            p + "queue_oldest_seconds",
            "Age of the oldest unfinished entry of a stream (0: empty).",
            ["stream"],
            registry=r,
        ),
        incident_active=Gauge(
            p + "incident_active",
            "1 while an incident is raised on a topic, 0 once it is over; set by the incident brake.",
            ["topic"],
            registry=r,
        ),
        incidents_raised=Counter(
            p + "incidents_raised",
            "Incidents the service raised itself on a spike of one intent's negative messages (not admins' ones).",
            registry=r,
        ),
        auth_failures=Counter(
            p + "auth_failures",
            "Requests refused: a wrong or missing token or password, an ended session, a missing CSRF token.",
            ["kind"],
            registry=r,
        ),
        review_outcomes=Counter(
            p + "review_outcomes",
            "Reviewed drafts by intent and how they fared: approved unedited, edited, rejected, handed over.",
            ["intent", "outcome"],
            registry=r,
        ),
        shadow_agreement=Counter(
            p + "shadow_agreement",
            "Shadow-mode cases: whether the bot alone would have done what the reviewer did.",
            ["intent", "result"],
            registry=r,
        ),
        llm_requests=Counter(
            p + "llm_requests",
            "Language-model attempts by outcome (ok, malformed, rate_limited, server_error, unreachable, timeout, "
            "refused, error; circuit_open: not sent).",
            ["outcome"],
            registry=r,
        ),
        llm_duration=Histogram(
            p + "llm_request_duration_seconds", "Language-model request latency.", buckets=_LATENCY_BUCKETS, registry=r
        ),
        llm_tokens=Counter(p + "llm_tokens", "Tokens used by the language model.", ["kind"], registry=r),
        llm_cost=Counter(
            p + "llm_cost", "Estimated model cost, in the currency of BOT_LLM_PRICE_* (0 when unpriced).", registry=r
        ),
        llm_circuit=Gauge(
            p + "llm_circuit_state", "The model's circuit breaker: 1 for its current state.", ["state"], registry=r
        ),
        drafts=Counter(
            p + "drafts",
            "Drafts written, by drafter and whether they were grounded.",
            ["drafter", "grounded"],
            registry=r,
        ),
        model_load=Gauge(p + "model_load_seconds", "Time the intent model took to load and train.", registry=r),
    )
