-- No single message can stop a channel: a message that fails deterministically, or keeps failing
-- past its retry budget, is set aside as a dead letter with its reason, and the next one goes
-- through. Operators list dead letters with the zone's `status` command and retry them after a fix.

-- Packing: attempts so far, when to try again, and whether the message was set aside.
ALTER TABLE exchange_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE exchange_outbox ADD COLUMN next_attempt_at_ms BIGINT;
ALTER TABLE exchange_outbox ADD COLUMN dead_at_ms BIGINT;
-- Inline files (small documents such as a signed certificate) travel sealed in the row instead
-- of as files on disk: JSON list of {item, media_type, sealed}; cleared once packed.
ALTER TABLE exchange_outbox ADD COLUMN inline_json TEXT;

-- Importing: failures of bundles still in the inbox, by file name (cleared when the bundle is
-- taken or set aside).
CREATE TABLE exchange_inbound_attempts (
    file_name          TEXT PRIMARY KEY,
    channel            TEXT NOT NULL,
    attempts           INTEGER NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    last_code          TEXT NOT NULL
);

-- Every message set aside, in either direction. `case_id` and `message_id` are filled only from
-- verified content (a forged header cannot name a citizen's application). `reason` is for
-- operators and holds no personal data; `code` is the short machine code status pages print.
CREATE TABLE exchange_dead_letters (
    id                 TEXT PRIMARY KEY,
    direction          TEXT NOT NULL,
    channel            TEXT NOT NULL,
    message_id         TEXT,
    bundle_id          TEXT,
    kind               TEXT,
    case_id            TEXT,
    code               TEXT NOT NULL,
    reason             TEXT NOT NULL,
    -- Inbound: the name under `<inbox>/.rejected/` and the name it had in the inbox.
    file_name          TEXT,
    inbox_name         TEXT,
    attempts           INTEGER NOT NULL,
    dead_at_ms         BIGINT NOT NULL,
    -- dead → retry-requested (an operator's command) → retried (the exchange put it back).
    state              TEXT NOT NULL,
    retry_requested_at_ms BIGINT,
    retried_at_ms      BIGINT
);
CREATE INDEX exchange_dead_letters_state ON exchange_dead_letters (state, dead_at_ms);
CREATE INDEX exchange_dead_letters_case ON exchange_dead_letters (case_id);
