-- ow-intranet: surveyors, survey packages, parcels with geometry and their history, the register
-- mirror. Portable across SQLite and PostgreSQL: TEXT ids, BIGINT integers and Unix-millisecond
-- times, no BLOB (geometry is WKB, hex-encoded in TEXT). Anything that may name a person
-- (parcel names, reasons, findings' wording) is stored sealed (ow-pii).

CREATE TABLE int_districts (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE int_surveyors (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    district_code TEXT NOT NULL REFERENCES int_districts(code),
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

CREATE TABLE int_sessions (
    token_digest TEXT PRIMARY KEY,
    surveyor_id TEXT NOT NULL REFERENCES int_surveyors(id),
    stage TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX int_sessions_surveyor ON int_sessions (surveyor_id);

-- Existing parcels (宗地): the cadastral database the spatial index is loaded from.
CREATE TABLE int_parcels (
    id BIGINT PRIMARY KEY,
    parcel_code TEXT NOT NULL UNIQUE,
    unit_code TEXT UNIQUE,
    district_code TEXT NOT NULL,
    name_sealed TEXT NOT NULL,
    area_m2 TEXT NOT NULL,
    geom_wkb TEXT NOT NULL,
    package_id TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX int_parcels_district ON int_parcels (district_code);

-- Buildings and other fixtures (定着物) on a parcel.
CREATE TABLE int_buildings (
    id TEXT PRIMARY KEY,
    parcel_id BIGINT NOT NULL REFERENCES int_parcels(id),
    number TEXT NOT NULL,
    area_m2 TEXT NOT NULL,
    geom_wkb TEXT NOT NULL,
    package_id TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX int_buildings_parcel ON int_buildings (parcel_id);

-- Every change of a parcel: which package, when, who.
CREATE TABLE int_parcel_history (
    id TEXT PRIMARY KEY,
    parcel_id BIGINT NOT NULL,
    parcel_code TEXT NOT NULL,
    action TEXT NOT NULL,
    package_id TEXT,
    application_no TEXT,
    surveyor_id TEXT,
    area_m2 TEXT NOT NULL,
    geom_wkb TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX int_parcel_history_parcel ON int_parcel_history (parcel_id);

-- Survey packages (权籍调查成果) received from the extranet.
CREATE TABLE int_packages (
    package_id TEXT PRIMARY KEY,
    application_no TEXT NOT NULL,
    district_code TEXT NOT NULL,
    format TEXT NOT NULL,
    confidential BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    sent_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    survey_file_id TEXT NOT NULL,
    survey_size BIGINT NOT NULL,
    survey_blake3 TEXT NOT NULL,
    report_file_id TEXT,
    status TEXT NOT NULL,
    error_count BIGINT NOT NULL,
    warning_count BIGINT NOT NULL,
    findings_sealed TEXT NOT NULL,
    decided_by TEXT,
    decided_at_ms BIGINT,
    reason_sealed TEXT,
    override_reason_sealed TEXT,
    review_message_id TEXT
);
CREATE INDEX int_packages_queue ON int_packages (district_code, status, received_at_ms);

-- The parcels of a package as checked at import.
CREATE TABLE int_package_parcels (
    package_id TEXT NOT NULL REFERENCES int_packages(package_id),
    position BIGINT NOT NULL,
    number TEXT NOT NULL,
    name_sealed TEXT NOT NULL,
    area_m2 TEXT NOT NULL,
    geom_wkb TEXT NOT NULL,
    unit_code TEXT,
    parcel_id BIGINT,
    PRIMARY KEY (package_id, position)
);

-- The register mirror (登记簿镜像): the state of units as the extranet's register log says.
CREATE TABLE int_register_units (
    unit_code TEXT PRIMARY KEY,
    district_code TEXT NOT NULL,
    registration_type TEXT NOT NULL,
    right_type TEXT NOT NULL,
    certificate_number TEXT,
    state TEXT NOT NULL,
    area_m2 TEXT,
    last_seq BIGINT NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);
CREATE INDEX int_register_units_district ON int_register_units (district_code);

-- Every register-log entry received, applied or held back behind a gap.
CREATE TABLE int_register_log (
    district_code TEXT NOT NULL,
    seq BIGINT NOT NULL,
    unit_code TEXT NOT NULL,
    registration_type TEXT NOT NULL,
    right_type TEXT NOT NULL,
    certificate_number TEXT,
    state TEXT NOT NULL,
    area_m2 TEXT,
    application_no TEXT,
    recorded_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    applied_at_ms BIGINT,
    PRIMARY KEY (district_code, seq)
);

-- Per district, the last entry applied (entries apply in order, without gaps).
CREATE TABLE int_register_cursor (
    district_code TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
