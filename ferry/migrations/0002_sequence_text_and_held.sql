-- Sequence numbers are u64 in the bundle format, and SQLite integers are i64: a sequence above
-- 2^63 - 1 could not be stored. Sequences are now stored as text, exactly 20 decimal digits with
-- leading zeros, so every u64 fits and text order is numeric order (MAX, ORDER BY, ranges).
--
-- The receiver also keeps each landed bundle's prev_digest, so that a bundle arriving after its
-- successor is checked against the digest the successor chained to.
--
-- held_files lists the files an agent could not handle (a file it cannot read, move or remove)
-- and is retrying with backoff, or has given up on; `ow-ferry status` shows them.

CREATE TABLE rx_landed_v2 (
    channel      TEXT    NOT NULL,
    sequence     TEXT    NOT NULL,
    bundle_id    TEXT    NOT NULL UNIQUE,
    digest       TEXT    NOT NULL,
    prev_digest  TEXT,
    file_name    TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    landed_at    TEXT    NOT NULL,
    PRIMARY KEY (channel, sequence)
);
INSERT INTO rx_landed_v2 (channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at)
    SELECT channel, printf('%020d', sequence), bundle_id, digest, NULL, file_name, bytes, landed_at
    FROM rx_landed;
DROP TABLE rx_landed;
ALTER TABLE rx_landed_v2 RENAME TO rx_landed;

CREATE TABLE tx_sent_v2 (
    bundle_id  TEXT    NOT NULL PRIMARY KEY,
    channel    TEXT    NOT NULL,
    sequence   TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    sent_at    TEXT    NOT NULL
);
INSERT INTO tx_sent_v2 (bundle_id, channel, sequence, digest, bytes, sent_at)
    SELECT bundle_id, channel, printf('%020d', sequence), digest, bytes, sent_at FROM tx_sent;
DROP INDEX tx_sent_channel;
DROP TABLE tx_sent;
ALTER TABLE tx_sent_v2 RENAME TO tx_sent;
CREATE INDEX tx_sent_channel ON tx_sent (channel, sequence);

CREATE TABLE tx_sequence_v2 (
    channel        TEXT    NOT NULL PRIMARY KEY,
    last_sequence  TEXT    NOT NULL,
    last_digest    TEXT    NOT NULL
);
INSERT INTO tx_sequence_v2 (channel, last_sequence, last_digest)
    SELECT channel, printf('%020d', last_sequence), last_digest FROM tx_sequence;
DROP TABLE tx_sequence;
ALTER TABLE tx_sequence_v2 RENAME TO tx_sequence;

CREATE TABLE held_files (
    agent        TEXT    NOT NULL,
    file         TEXT    NOT NULL,
    code         TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    gave_up      INTEGER NOT NULL,
    first_at     TEXT    NOT NULL,
    last_at      TEXT    NOT NULL,
    PRIMARY KEY (agent, file)
);
