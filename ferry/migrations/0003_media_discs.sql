-- Offline media (docs/offline-media.md): the discs a zone exported or imported, and what each
-- carried. An exported disc's row commits in the same transaction as the sent rows of its
-- bundles; an imported disc is recorded `staged` before its bundles land and `imported` after.

CREATE TABLE media_discs (
    direction           TEXT    NOT NULL,  -- 'export' or 'import'
    disc_id             TEXT    NOT NULL,
    set_id              TEXT    NOT NULL,
    route               TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    disc_index          INTEGER NOT NULL,
    disc_count          INTEGER NOT NULL,
    first_sequence      TEXT,
    last_sequence       TEXT,
    bundles             INTEGER NOT NULL,
    parts               INTEGER NOT NULL,
    payload_bytes       INTEGER NOT NULL,
    tagmanifest_sha256  TEXT    NOT NULL,
    status              TEXT    NOT NULL,  -- export: 'exported'; import: 'staged' or 'imported'
    recorded_at         TEXT    NOT NULL,
    PRIMARY KEY (direction, disc_id)
);
CREATE INDEX media_discs_set ON media_discs (direction, set_id);
