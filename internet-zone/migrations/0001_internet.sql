-- ow-internet: the citizen portal's own tables. Portable SQL (SQLite and PostgreSQL): ids TEXT,
-- times BIGINT Unix milliseconds, no BLOBs (files live under the data folder, by BLAKE3).
-- Personal data (names, ID numbers, phones, file names, form contents) is stored only sealed
-- (ow-pii, column suffix _sealed) with keyed blind indexes (suffix _index) for exact lookup.

CREATE TABLE inet_accounts (
    id                TEXT PRIMARY KEY,
    id_number_index   TEXT NOT NULL UNIQUE,
    phone_index       TEXT NOT NULL UNIQUE,
    name_sealed       TEXT NOT NULL,
    id_number_sealed  TEXT NOT NULL,
    phone_sealed      TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    failed_logins     BIGINT NOT NULL DEFAULT 0,
    locked_until_ms   BIGINT,
    created_at_ms     BIGINT NOT NULL
);

-- Only the digest of a session token is stored.
CREATE TABLE inet_sessions (
    token_digest   TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES inet_accounts (id),
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
CREATE INDEX inet_sessions_account ON inet_sessions (account_id);

-- Drafts and submitted applications. application_no is NULL while the row is a draft.
CREATE TABLE inet_applications (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES inet_accounts (id),
    application_no       TEXT UNIQUE,
    business_type        TEXT NOT NULL,
    state                TEXT NOT NULL,
    status               TEXT,
    status_reason        TEXT,
    status_changed_at_ms BIGINT,
    requested_materials  TEXT,
    district_code        TEXT,
    form_sealed          TEXT NOT NULL,
    created_at_ms        BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL,
    submitted_at_ms      BIGINT
);
CREATE INDEX inet_applications_account ON inet_applications (account_id, created_at_ms);

-- Uploaded materials; the bytes are under <data_dir>/files by BLAKE3.
CREATE TABLE inet_materials (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES inet_applications (id),
    supplement_id    TEXT,
    checklist_code   TEXT NOT NULL,
    file_name_sealed TEXT NOT NULL,
    media_type       TEXT NOT NULL,
    size             BIGINT NOT NULL,
    blake3           TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL
);
CREATE INDEX inet_materials_application ON inet_materials (application_id);

CREATE TABLE inet_supplements (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES inet_applications (id),
    note_sealed     TEXT NOT NULL,
    submitted_at_ms BIGINT NOT NULL
);

-- Per-day counters for application numbers (SQ + yyyymmdd + 6 digits).
CREATE TABLE inet_sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- The status timeline, fed by imported ApplicationStatus messages.
CREATE TABLE inet_timeline (
    id                  TEXT PRIMARY KEY,
    application_id      TEXT NOT NULL REFERENCES inet_applications (id),
    status              TEXT NOT NULL,
    reason              TEXT,
    requested_materials TEXT,
    changed_at_ms       BIGINT NOT NULL,
    UNIQUE (application_id, status, changed_at_ms)
);

-- Issued e-certificates of an account: the signed JSON (full personal data) sealed.
CREATE TABLE inet_certificates (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES inet_accounts (id),
    application_id     TEXT NOT NULL REFERENCES inet_applications (id),
    certificate_number TEXT NOT NULL UNIQUE,
    signed_sealed      TEXT NOT NULL,
    issued_at_ms       BIGINT NOT NULL,
    received_at_ms     BIGINT NOT NULL
);
CREATE INDEX inet_certificates_account ON inet_certificates (account_id);

-- What /verify may show anyone: masked holders, the code only as its digest.
CREATE TABLE inet_public_certificates (
    certificate_number TEXT PRIMARY KEY,
    status             TEXT NOT NULL,
    code_digest        TEXT NOT NULL,
    holders_masked     TEXT NOT NULL,
    unit_code          TEXT NOT NULL,
    location           TEXT NOT NULL,
    issued_at_ms       BIGINT NOT NULL,
    cancelled_at_ms    BIGINT,
    cancelled_reason   TEXT,
    application_no     TEXT,
    updated_at_ms      BIGINT NOT NULL
);
