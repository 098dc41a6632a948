-- The register log (登簿日志): every change 登簿 makes to a unit's registered state, numbered per
-- district from 1 without gaps, written in the transaction that makes the change. It feeds the
-- intranet's register mirror (`register-log` messages over the one-way gateway): rows are queued
-- for sending in order, once; `message_id` names the message that carried a row. No personal data.
CREATE TABLE ext_register_log (
    district_code     TEXT NOT NULL REFERENCES ext_districts(code),
    seq               BIGINT NOT NULL,
    unit_code         TEXT NOT NULL REFERENCES ext_units(unit_code),
    registration_type TEXT NOT NULL,
    right_type        TEXT NOT NULL,
    certificate_number TEXT,
    state             TEXT NOT NULL,
    area_m2           TEXT,
    application_no    TEXT,
    recorded_at_ms    BIGINT NOT NULL,
    message_id        TEXT,
    PRIMARY KEY (district_code, seq)
);
CREATE INDEX ext_register_log_unsent ON ext_register_log (message_id, district_code, seq);

-- Rights recorded before the log existed: one entry per current right, in the order they were
-- recorded, so the mirror starts from the whole current register.
INSERT INTO ext_register_log (district_code, seq, unit_code, registration_type, right_type,
    state, area_m2, application_no, recorded_at_ms)
SELECT u.district_code,
       ROW_NUMBER() OVER (PARTITION BY u.district_code ORDER BY r.recorded_at_ms, r.id),
       r.unit_code, CAST(r.registration_type AS TEXT), CAST(u.right_type AS TEXT),
       'current', u.area_m2, r.application_no, r.recorded_at_ms
FROM ext_rights r JOIN ext_units u ON u.unit_code = r.unit_code
WHERE r.status = 'current';
