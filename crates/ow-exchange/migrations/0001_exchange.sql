-- Transactional outbox: a zone queues a message in the same transaction as the change it
-- reports; the packer turns pending rows into signed bundles in the zone's outbox folder.
CREATE TABLE exchange_outbox (
    message_id      TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    case_id         TEXT,
    -- The envelope JSON, sealed (it holds personal data); cleared once packed.
    envelope_sealed TEXT,
    -- JSON list of {item, media_type, path} for the files that travel with it.
    files_json      TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    packed_at_ms    BIGINT,
    bundle_id       TEXT
);
CREATE INDEX exchange_outbox_pending ON exchange_outbox (packed_at_ms, message_id);

-- Every bundle a zone has taken from its inbox, with what became of it. Written in the same
-- transaction as the import's effects: a bundle id here was imported (or refused) exactly once.
CREATE TABLE exchange_imported (
    bundle_id      TEXT PRIMARY KEY,
    message_id     TEXT NOT NULL,
    channel        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    case_id        TEXT,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    imported_at_ms BIGINT NOT NULL
);

-- Message ids already imported: a message re-sent under a new bundle id is a duplicate.
CREATE TABLE exchange_messages (
    message_id     TEXT PRIMARY KEY,
    bundle_id      TEXT NOT NULL,
    imported_at_ms BIGINT NOT NULL
);
