-- private.advance_message: monotonic message status; terminal statuses never change.
BEGIN;
\ir ../../helpers.psql
SELECT plan(24);

SELECT (pg_temp.new_tenant('Advance Co') -> 'tenant' ->> 'id') AS tenant_id \gset
SELECT pg_temp.new_message(:'tenant_id') AS m \gset
SELECT private.uuid7_time(:'m') AS c \gset
CREATE FUNCTION pg_temp.msg(p uuid) RETURNS app.messages LANGUAGE sql AS $$
  SELECT * FROM app.messages WHERE id = p
$$;

SELECT is(pg_temp.problem(format($$SELECT private.advance_message(%L, %L, 'sending')$$, private.uuid7(), now())),
  'HM404 message_not_found', 'an unknown message: HM404 message_not_found');
SELECT is(pg_temp.problem(format($$SELECT private.advance_message(%L, %L, 'sending')$$, :'m', :'c'::timestamptz + interval '1 ms')),
  'HM404 message_not_found', 'the right id with the wrong created_at: HM404');

SELECT is(private.advance_message(:'m', :'c', 'sending'), 'sending', 'queued -> sending returns sending');
SELECT is((pg_temp.msg(:'m')).status, 'sending', 'the message is sending');
SELECT is((pg_temp.msg(:'m')).sent_at, NULL, 'sending sets no sent_at');
SELECT is(private.advance_message(:'m', :'c', 'queued'), 'sending', 'back to queued: refused, returns sending');
SELECT is((pg_temp.msg(:'m')).status, 'sending', 'still sending');
SELECT is(private.advance_message(:'m', :'c', 'sending', 'twilio', 'SM1'), 'sending',
  'the same status again returns it unchanged');
SELECT is((pg_temp.msg(:'m')).provider_message_id, 'SM1', 'but learns the provider id it did not know');
SELECT is((pg_temp.msg(:'m')).provider, 'twilio', 'and the provider');

SELECT is(private.advance_message(:'m', :'c', 'sent', 'twilio', 'SM2'), 'sent', 'sending -> sent');
SELECT is((pg_temp.msg(:'m')).provider_message_id, 'SM1', 'a known provider id is never replaced');
SELECT is((pg_temp.msg(:'m')).sent_at, now(), 'sent sets sent_at');
SELECT is((pg_temp.msg(:'m')).completed_at, NULL, 'sent is not completed');

SELECT is(private.advance_message(:'m', :'c', 'delivered', NULL, NULL, 'twilio:0', 'fine'), 'delivered',
  'sent -> delivered');
SELECT is((pg_temp.msg(:'m')).completed_at, now(), 'a terminal status sets completed_at');
SELECT is((pg_temp.msg(:'m')).error_code, 'twilio:0', 'the error code is stored');
SELECT is(private.advance_message(:'m', :'c', 'failed', NULL, NULL, 'twilio:30003', 'late'), 'delivered',
  'delivered -> failed: refused (first terminal wins)');
SELECT is(private.advance_message(:'m', :'c', 'undelivered'), 'delivered', 'delivered -> undelivered: refused');
SELECT is(private.advance_message(:'m', :'c', 'rejected'), 'delivered', 'delivered -> rejected: refused');
SELECT is(private.advance_message(:'m', :'c', 'sent'), 'delivered', 'delivered -> sent: refused');
SELECT results_eq(format($$SELECT status, error_code, error_message FROM app.messages WHERE id = %L$$, :'m'),
  $$VALUES ('delivered', 'twilio:0', 'fine')$$, 'the refused changes left status and error alone');

-- Straight from queued to a terminal status.
SELECT pg_temp.new_message(:'tenant_id') AS m2 \gset
SELECT is(private.advance_message(:'m2', private.uuid7_time(:'m2'), 'rejected', NULL, NULL, 'tenant_suspended'),
  'rejected', 'queued -> rejected');
SELECT results_eq(format($$SELECT status, sent_at, completed_at FROM app.messages WHERE id = %L$$, :'m2'),
  $$VALUES ('rejected', NULL::timestamptz, now())$$, 'rejected: no sent_at, completed_at set');

SELECT * FROM finish();
ROLLBACK;
