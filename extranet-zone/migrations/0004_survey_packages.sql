-- Survey packages (权籍调查成果) sent to the cadastral zone, and their reviews. A package is
-- answered once: `outcome` is NULL until its `survey-review` arrives (on offline media).
-- The review's findings and the surveyor's reason are sealed (`other:survey-review`, context
-- `ext_survey_packages:<package_id>`); `parcels_json` holds the assigned unit codes and areas.
CREATE TABLE ext_survey_packages (
    package_id         TEXT PRIMARY KEY,
    application_no     TEXT NOT NULL REFERENCES ext_cases(application_no),
    format             TEXT NOT NULL,
    survey_material_id TEXT NOT NULL,
    report_material_id TEXT,
    confidential       BIGINT NOT NULL,
    sent_at_ms         BIGINT NOT NULL,
    sent_by            TEXT,
    outcome            TEXT,
    review_sealed      TEXT,
    parcels_json       TEXT,
    reviewed_at_ms     BIGINT,
    received_at_ms     BIGINT
);
CREATE INDEX ext_survey_packages_case ON ext_survey_packages (application_no, sent_at_ms);

-- The register page of a first registration's new unit, before 登簿 opens it in `ext_units`:
-- the code and area come from the approved survey, the rest from the registrar (坐落, 用途,
-- 权利类型, 权利性质, 使用期限). One row per case; a later approval replaces code and area.
CREATE TABLE ext_new_units (
    application_no TEXT PRIMARY KEY REFERENCES ext_cases(application_no),
    unit_code      TEXT NOT NULL,
    area_m2        TEXT NOT NULL,
    location       TEXT NOT NULL DEFAULT '',
    usage          TEXT NOT NULL DEFAULT '',
    right_type     BIGINT NOT NULL DEFAULT 4,
    right_nature   TEXT NOT NULL DEFAULT '',
    use_term       TEXT NOT NULL DEFAULT '',
    entered_by     TEXT,
    entered_at_ms  BIGINT
);
