-- State of one zone's ferry agents. Owned by the ow-ferry crate.

-- Bundles a receiving agent has landed in its inbox. A bundle id or a (channel, sequence) pair is
-- landed at most once; this is what rejects a replayed, duplicated or older bundle after a restart.
CREATE TABLE rx_landed (
    channel    TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,
    bundle_id  TEXT    NOT NULL UNIQUE,
    digest     TEXT    NOT NULL,
    file_name  TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    landed_at  TEXT    NOT NULL,
    PRIMARY KEY (channel, sequence)
);

-- Bundles a sending agent has placed in its gateway folder.
CREATE TABLE tx_sent (
    bundle_id  TEXT    NOT NULL PRIMARY KEY,
    channel    TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,
    digest     TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    sent_at    TEXT    NOT NULL
);
CREATE INDEX tx_sent_channel ON tx_sent (channel, sequence);

-- The packer's per-channel sequence: the last sequence number signed and that bundle's digest,
-- which the next bundle on the channel chains to.
CREATE TABLE tx_sequence (
    channel        TEXT    NOT NULL PRIMARY KEY,
    last_sequence  INTEGER NOT NULL,
    last_digest    TEXT    NOT NULL
);
