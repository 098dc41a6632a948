-- The registrar's opinion (审核意见, 登簿意见, …) given with a workflow step, sealed with ow-pii
-- (field `other:case-opinion`, context `ext_case_events:<id>`): it may quote personal data.
ALTER TABLE ext_case_events ADD COLUMN opinion_sealed TEXT;

-- When the case was accepted (受理): the time limit counts from here.
ALTER TABLE ext_cases ADD COLUMN accepted_at_ms BIGINT;
UPDATE ext_cases SET accepted_at_ms = (
    SELECT MAX(e.at_ms) FROM ext_case_events e
    WHERE e.application_no = ext_cases.application_no AND e.action = 'case.accept'
);
