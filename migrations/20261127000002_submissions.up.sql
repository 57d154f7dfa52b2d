-- Graded lab submissions, their per-test results, autosaved drafts and solved labs.

CREATE TABLE submissions (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lab_id       TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('run', 'submit')),
    language     TEXT NOT NULL CHECK (language IN ('javascript', 'wasm')),
    source       TEXT NOT NULL,
    -- 'pending' until graded, then 'accepted' or the verdict of the first failing test.
    verdict      TEXT NOT NULL DEFAULT 'pending',
    passed       INTEGER NOT NULL DEFAULT 0,
    total        INTEGER NOT NULL DEFAULT 0,
    score        INTEGER NOT NULL DEFAULT 0,
    fuel_used    BIGINT NOT NULL DEFAULT 0,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);
CREATE INDEX submissions_user_lab ON submissions (user_id, lab_id, created_at DESC);

CREATE TABLE submission_results (
    submission_id BIGINT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    name          TEXT NOT NULL,
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'hidden', 'random')),
    passed        BOOLEAN NOT NULL,
    verdict       TEXT NOT NULL,
    message       TEXT NOT NULL,
    -- input / expected / actual: only for public tests and shrunk random traces.
    detail        JSONB,
    console       TEXT NOT NULL DEFAULT '',
    fuel_used     BIGINT NOT NULL,
    duration_us   BIGINT NOT NULL,
    PRIMARY KEY (submission_id, idx)
);

CREATE TABLE lab_drafts (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lab_id      TEXT NOT NULL,
    source      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, lab_id)
);

CREATE TABLE lab_solves (
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lab_id         TEXT NOT NULL,
    submission_id  BIGINT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    solved_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, lab_id)
);

ALTER TABLE activity DROP CONSTRAINT activity_kind_check;
ALTER TABLE activity ADD CONSTRAINT activity_kind_check
    CHECK (kind IN ('started', 'completed', 'quiz_correct', 'quiz_wrong', 'lab_solved'));
