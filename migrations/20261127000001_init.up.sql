-- Accounts, sessions, learner progress and the lesson search index.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'learner' CHECK (role IN ('learner', 'instructor', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Only a SHA-256 of the session token is stored, so a database leak does not leak sessions.
CREATE TABLE sessions (
    token_hash  BYTEA PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE lesson_progress (
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lesson_slug  TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, lesson_slug)
);

-- Every attempt is kept: instructors see how many tries a question takes.
CREATE TABLE quiz_answers (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lesson_slug  TEXT NOT NULL,
    quiz_id      TEXT NOT NULL,
    choice       INTEGER NOT NULL,
    correct      BOOLEAN NOT NULL,
    answered_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX quiz_answers_user_lesson ON quiz_answers (user_id, lesson_slug, quiz_id, answered_at DESC);

-- What a learner did and when: the dashboard's recent activity and day streak.
CREATE TABLE activity (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('started', 'completed', 'quiz_correct', 'quiz_wrong')),
    lesson_slug  TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX activity_user_at ON activity (user_id, at DESC);

CREATE TABLE lesson_search (
    slug      TEXT PRIMARY KEY,
    title     TEXT NOT NULL,
    summary   TEXT NOT NULL,
    track     TEXT NOT NULL,
    tags      TEXT NOT NULL,
    body      TEXT NOT NULL,
    draft     BOOLEAN NOT NULL,
    document  TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') ||
        setweight(to_tsvector('english', tags), 'A') ||
        setweight(to_tsvector('english', summary), 'B') ||
        setweight(to_tsvector('english', body), 'C')
    ) STORED
);
CREATE INDEX lesson_search_document ON lesson_search USING GIN (document);
