-- Trust: outcomes, the persisted phase per environment, proposed actions
-- and sign-offs. Outcomes and sign-offs are only ever inserted.

CREATE TABLE trust_outcomes (
    id               TEXT PRIMARY KEY,
    environment      TEXT NOT NULL,
    investigation_id TEXT,
    action_id        TEXT,
    kind             TEXT NOT NULL,
    recorded_at      TEXT NOT NULL,
    -- The whole OutcomeRecord as JSON.
    record           TEXT NOT NULL
);

CREATE INDEX trust_outcomes_by_env ON trust_outcomes (environment, recorded_at, id);

CREATE TABLE trust_phase (
    environment      TEXT PRIMARY KEY,
    phase            TEXT NOT NULL,
    since            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    configured_phase TEXT NOT NULL
);

CREATE TABLE trust_actions (
    id                  TEXT PRIMARY KEY,
    investigation_id    TEXT NOT NULL,
    state               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    -- The whole ActionRecord as JSON; state is repeated for the
    -- compare-and-set update and for filtering.
    record              TEXT NOT NULL
);

CREATE INDEX trust_actions_by_investigation ON trust_actions (investigation_id, created_at);

CREATE TABLE trust_signoffs (
    environment TEXT NOT NULL,
    to_phase    TEXT NOT NULL,
    role        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    signed_at   TEXT NOT NULL,
    PRIMARY KEY (environment, to_phase, role, subject)
);
