CREATE TABLE counter (
    id   TEXT PRIMARY KEY,
    n    BIGINT NOT NULL,
    note TEXT
);
