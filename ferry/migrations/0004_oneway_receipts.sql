-- The one-way discipline (docs/offline-media.md, "Receipts"): receipts written by a receiving
-- zone and imported by a sending zone, and the sent bundles a verified receipt confirmed.
-- (Numbered 0005 so the offline-media work can take 0004; sqlx applies what is missing in order.)

-- A sent bundle that a verified receipt listed with the same channel, sequence and digest.
CREATE TABLE tx_confirmed (
    bundle_id     TEXT    NOT NULL PRIMARY KEY,
    channel       TEXT    NOT NULL,
    sequence      TEXT    NOT NULL,
    receipt_id    TEXT    NOT NULL,
    confirmed_at  TEXT    NOT NULL
);
CREATE INDEX tx_confirmed_channel ON tx_confirmed (channel, sequence);

-- Receipts this zone wrote ('written') or imported ('imported'), with the receipt's JSON as
-- carried (evidence: the other side's signed log checkpoint is inside it).
CREATE TABLE ferry_receipts (
    direction        TEXT    NOT NULL,
    receipt_id       TEXT    NOT NULL,
    channel          TEXT    NOT NULL,  -- the channel whose landings the receipt lists
    first_sequence   TEXT,
    last_sequence    TEXT,
    bundles          INTEGER NOT NULL,
    confirmed        INTEGER NOT NULL,
    mismatched       INTEGER NOT NULL,
    checkpoint_size  INTEGER,
    payload          TEXT    NOT NULL,
    recorded_at      TEXT    NOT NULL,
    PRIMARY KEY (direction, receipt_id)
);
