-- private.message_json: a message as the command API returns it.
BEGIN;
\ir ../../helpers.psql
SELECT plan(4);

SELECT (pg_temp.new_tenant('Json Co') -> 'tenant' ->> 'id') AS tenant_id \gset
SELECT pg_temp.new_message(:'tenant_id', 'json body') AS message_id \gset

SELECT is((SELECT array_agg(k ORDER BY k) FROM app.messages m, jsonb_object_keys(private.message_json(m)) k
            WHERE m.id = :'message_id'),
  ARRAY['body', 'category', 'channel', 'completed_at', 'contact_id', 'created_at', 'current_step', 'error_code',
        'error_message', 'from', 'id', 'provider', 'provider_message_id', 'reasons', 'sent_at', 'status', 'steps', 'to',
        'updated_at', 'vertical'],
  'exactly the public fields (no tenant_id, api_key_id, idempotency_key)');
SELECT is((SELECT private.message_json(m) FROM app.messages m WHERE m.id = :'message_id'),
  (SELECT jsonb_build_object('id', m.id, 'channel', 'sms', 'status', 'queued', 'to', '+14155550123',
            'from', '+15005550006', 'body', 'json body', 'provider', NULL, 'provider_message_id', NULL,
            'error_code', NULL, 'error_message', NULL, 'created_at', m.created_at, 'updated_at', m.updated_at,
            'sent_at', NULL, 'completed_at', NULL, 'reasons', NULL, 'vertical', NULL, 'category', 'transactional',
            'steps', 1, 'current_step', 1, 'contact_id', NULL)
     FROM app.messages m WHERE m.id = :'message_id'),
  'the values are the row''s');
SELECT is((SELECT (private.message_json(m) ->> 'created_at')::timestamptz FROM app.messages m WHERE m.id = :'message_id'),
  private.uuid7_time(:'message_id'), 'created_at is the instant in the id');
SELECT is((SELECT jsonb_typeof(private.message_json(m) -> 'provider') FROM app.messages m WHERE m.id = :'message_id'),
  'null', 'unknown values are JSON null');

SELECT * FROM finish();
ROLLBACK;
