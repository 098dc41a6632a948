-- ow-extranet: staff, cases, the register, certificates. Portable across SQLite and PostgreSQL:
-- TEXT ids, BIGINT integers and Unix-millisecond times, no BLOB. Names and ID numbers of people
-- are stored only sealed (ow-pii), with a blind index where lookup is needed.

CREATE TABLE ext_districts (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    province TEXT NOT NULL,
    issuer TEXT NOT NULL
);

CREATE TABLE ext_staff (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    district_code TEXT NOT NULL REFERENCES ext_districts(code),
    roles TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_sealed TEXT NOT NULL,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    active BIGINT NOT NULL DEFAULT 1,
    created_by TEXT,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE ext_sessions (
    token_digest TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES ext_staff(id),
    stage TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX ext_sessions_staff ON ext_sessions (staff_id);

CREATE TABLE ext_units (
    unit_code TEXT PRIMARY KEY,
    district_code TEXT NOT NULL REFERENCES ext_districts(code),
    location TEXT NOT NULL,
    area_m2 TEXT NOT NULL,
    usage TEXT NOT NULL,
    right_type BIGINT NOT NULL,
    right_nature TEXT NOT NULL,
    use_term TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX ext_units_district ON ext_units (district_code);

CREATE TABLE ext_rights (
    id TEXT PRIMARY KEY,
    unit_code TEXT NOT NULL REFERENCES ext_units(unit_code),
    status TEXT NOT NULL,
    registration_type BIGINT NOT NULL,
    joint_ownership BIGINT NOT NULL,
    application_no TEXT,
    recorded_at_ms BIGINT NOT NULL,
    recorded_by TEXT,
    ended_at_ms BIGINT,
    ended_by_application TEXT
);
CREATE INDEX ext_rights_unit ON ext_rights (unit_code, status);

CREATE TABLE ext_right_holders (
    id TEXT PRIMARY KEY,
    right_id TEXT NOT NULL REFERENCES ext_rights(id),
    position BIGINT NOT NULL,
    name_sealed TEXT NOT NULL,
    id_type TEXT NOT NULL,
    id_number_sealed TEXT NOT NULL,
    id_number_index TEXT NOT NULL,
    share TEXT NOT NULL
);
CREATE INDEX ext_right_holders_right ON ext_right_holders (right_id);
CREATE INDEX ext_right_holders_index ON ext_right_holders (id_number_index);

CREATE TABLE ext_mortgages (
    id TEXT PRIMARY KEY,
    unit_code TEXT NOT NULL REFERENCES ext_units(unit_code),
    status TEXT NOT NULL,
    mortgagee TEXT NOT NULL,
    method BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    released_at_ms BIGINT
);
CREATE INDEX ext_mortgages_unit ON ext_mortgages (unit_code);

CREATE TABLE ext_seizures (
    id TEXT PRIMARY KEY,
    unit_code TEXT NOT NULL REFERENCES ext_units(unit_code),
    status TEXT NOT NULL,
    kind BIGINT NOT NULL,
    court TEXT NOT NULL,
    document_no TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    released_at_ms BIGINT
);
CREATE INDEX ext_seizures_unit ON ext_seizures (unit_code);

CREATE TABLE ext_cases (
    application_no TEXT PRIMARY KEY,
    district_code TEXT NOT NULL REFERENCES ext_districts(code),
    business_type TEXT NOT NULL,
    unit_code TEXT,
    given_certificate_number TEXT,
    price_fen BIGINT NOT NULL,
    applicant_ref TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    requested_materials TEXT NOT NULL DEFAULT '',
    submitted_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    old_right_id TEXT,
    new_right_id TEXT,
    recorded_at_ms BIGINT,
    certificate_number TEXT
);
CREATE INDEX ext_cases_queue ON ext_cases (district_code, status, received_at_ms);

CREATE TABLE ext_case_parties (
    id TEXT PRIMARY KEY,
    application_no TEXT NOT NULL REFERENCES ext_cases(application_no),
    role TEXT NOT NULL,
    position BIGINT NOT NULL,
    name_sealed TEXT NOT NULL,
    id_type TEXT NOT NULL,
    id_number_sealed TEXT NOT NULL,
    id_number_index TEXT NOT NULL,
    phone_sealed TEXT,
    share TEXT NOT NULL
);
CREATE INDEX ext_case_parties_case ON ext_case_parties (application_no);

CREATE TABLE ext_case_materials (
    id TEXT PRIMARY KEY,
    application_no TEXT NOT NULL REFERENCES ext_cases(application_no),
    checklist_code TEXT NOT NULL,
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    blake3 TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL
);
CREATE INDEX ext_case_materials_case ON ext_case_materials (application_no);

-- Who did what to which case, when and why. Written in the same transaction as the action;
-- copied to the tamper-evident audit log right after commit (audit_index records where).
CREATE TABLE ext_case_events (
    id TEXT PRIMARY KEY,
    application_no TEXT NOT NULL,
    district_code TEXT,
    staff_id TEXT,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    reason TEXT,
    at_ms BIGINT NOT NULL,
    audit_index BIGINT
);
CREATE INDEX ext_case_events_case ON ext_case_events (application_no, at_ms);
CREATE INDEX ext_case_events_unaudited ON ext_case_events (audit_index);

-- A case recording (登簿) on a unit holds this row for the length of its transaction; the
-- primary key stops a second case recording on the same unit at the same time.
CREATE TABLE ext_unit_locks (
    unit_code TEXT PRIMARY KEY,
    application_no TEXT NOT NULL,
    taken_at_ms BIGINT NOT NULL
);

CREATE TABLE ext_cert_counters (
    district_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    kind TEXT NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (district_code, year, kind)
);

CREATE TABLE ext_certificates (
    certificate_number TEXT PRIMARY KEY,
    district_code TEXT NOT NULL REFERENCES ext_districts(code),
    year BIGINT NOT NULL,
    kind TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    unit_code TEXT NOT NULL REFERENCES ext_units(unit_code),
    right_id TEXT NOT NULL REFERENCES ext_rights(id),
    application_no TEXT,
    status TEXT NOT NULL,
    holders_masked TEXT NOT NULL,
    location TEXT NOT NULL,
    code_digest TEXT NOT NULL,
    code_sealed TEXT NOT NULL,
    signed_sealed TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    issued_by TEXT,
    cancelled_at_ms BIGINT,
    cancelled_reason TEXT,
    cancelled_by_application TEXT,
    UNIQUE (district_code, year, kind, sequence)
);
CREATE INDEX ext_certificates_unit ON ext_certificates (unit_code, status);
