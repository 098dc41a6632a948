-- A message travels by the channel's gateway or, when its content requires it (a confidential
-- survey package), only on offline media: the packer writes it into the channel's media outbox,
-- never into the gateway's. Rows queued before this column existed went by the gateway.
ALTER TABLE exchange_outbox ADD COLUMN route TEXT NOT NULL DEFAULT 'gateway';
