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
