-- The internet zone keeps uploaded materials only until they have crossed: each material knows
-- the outbox message that carries it, and when the back office acknowledged that message.
ALTER TABLE inet_materials ADD COLUMN message_id TEXT;
ALTER TABLE inet_materials ADD COLUMN delivered_at_ms BIGINT;
CREATE INDEX inet_materials_message ON inet_materials (message_id);
