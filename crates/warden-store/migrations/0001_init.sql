-- Incidents, their alerts, investigations and reports.
-- Times are RFC 3339 text in UTC; JSON columns hold serde documents.

CREATE TABLE incidents (
    id             TEXT PRIMARY KEY,
    title          TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_event_at TEXT NOT NULL,
    last_event_at  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    topology       TEXT NOT NULL DEFAULT '[]'
);

-- An alert is identified by its fingerprint within an incident: a
-- fingerprint that resolves and later fires again is a new occurrence and
-- may land in a new incident without rewriting the old one.
CREATE TABLE alerts (
    incident_id   TEXT NOT NULL REFERENCES incidents (id),
    fingerprint   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at     TEXT NOT NULL,
    ends_at       TEXT,
    labels        TEXT NOT NULL,
    annotations   TEXT NOT NULL,
    generator_url TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
) WITHOUT ROWID;

-- One investigation per incident, enforced here so that no code path can
-- start a second one.
CREATE TABLE investigations (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL UNIQUE REFERENCES incidents (id),
    phase           TEXT NOT NULL,
    plan            TEXT NOT NULL,
    state           TEXT NOT NULL,
    failure_reason  TEXT,
    failure_detail  TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    job_ref         TEXT,
    -- SHA-256 of the one-time result credential; the credential itself is
    -- never stored. Cleared when used.
    credential_hash BLOB
);

CREATE INDEX investigations_by_state ON investigations (state, id);

CREATE TABLE reports (
    investigation_id TEXT PRIMARY KEY REFERENCES investigations (id),
    report           TEXT NOT NULL,
    stored_at        TEXT NOT NULL
);
