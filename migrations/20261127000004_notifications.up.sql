-- The notifications lab: orders and their transactional outbox, what the notification service
-- made of each event (notifications, mails, dead letters), the per-event journey, and each
-- learner's fault knobs. Every row belongs to a learner namespace (`u<id>` or `v<hash>`).

CREATE TABLE notify_orders (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    learner      text NOT NULL,
    item         text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notify_orders_learner ON notify_orders (learner, created_at DESC);

-- Written in the same transaction as the order; the relay publishes unsent rows and marks them.
CREATE TABLE notify_outbox (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    learner    text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX notify_outbox_unsent ON notify_outbox (id) WHERE sent_at IS NULL;

-- One row per event (the idempotent consumer's unique key). `seq` is the learner's cursor:
-- assigned under a per-learner lock at insert, so it only ever grows in commit order and a
-- reader that has seen seq N has seen every row below it.
CREATE TABLE notify_notifications (
    id         bigserial PRIMARY KEY,
    learner    text NOT NULL,
    seq        bigint NOT NULL,
    event_id   uuid NOT NULL UNIQUE,
    title      text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    UNIQUE (learner, seq)
);

-- The email handler's outbox: what would have gone to a mail server.
CREATE TABLE notify_emails (
    id         bigserial PRIMARY KEY,
    learner    text NOT NULL,
    event_id   uuid NOT NULL UNIQUE,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    attempt    integer NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notify_emails_learner ON notify_emails (learner, id DESC);

-- Filled by the consumer of the dead-letter topic: one row per dead letter, keyed by the id the
-- router put in its `x-dead-letter-id` header (partition and offset are not unique: an embedded
-- broker starts again at offset 0 on every restart).
CREATE TABLE notify_dead_letters (
    id          bigserial PRIMARY KEY,
    dlt_id      uuid NOT NULL UNIQUE,
    learner     text NOT NULL,
    event_id    uuid NOT NULL,
    handler     text NOT NULL,
    reason      text NOT NULL,
    error       text NOT NULL,
    attempts    integer NOT NULL,
    history     jsonb NOT NULL,
    payload     jsonb NOT NULL,
    dlt_partition integer NOT NULL,
    dlt_offset  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);
CREATE INDEX notify_dead_letters_learner ON notify_dead_letters (learner, id DESC);

-- What happened to each event, step by step, for the journey timeline.
CREATE TABLE notify_journey (
    id       bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    learner  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    stage    text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX notify_journey_event ON notify_journey (event_id, id);

-- Fault knobs, per learner: they only ever affect that learner's events.
CREATE TABLE notify_faults (
    learner        text PRIMARY KEY,
    email_mode     text NOT NULL DEFAULT 'ok' CHECK (email_mode IN ('ok', 'fail_times', 'always', 'fatal')),
    fail_remaining integer NOT NULL DEFAULT 0 CHECK (fail_remaining >= 0),
    slow_ms        integer NOT NULL DEFAULT 0 CHECK (slow_ms >= 0),
    paused         boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Events that arrived while their learner had paused the consumer; drained in order on resume.
CREATE TABLE notify_parked (
    id       bigserial PRIMARY KEY,
    learner  text NOT NULL,
    event_id uuid NOT NULL,
    payload  jsonb NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notify_parked_learner ON notify_parked (learner, id);
