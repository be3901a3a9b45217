DROP TABLE app.idempotency_keys;
DROP TABLE app.message_events;
DROP TABLE app.message_attempts;
DROP TABLE app.messages;
