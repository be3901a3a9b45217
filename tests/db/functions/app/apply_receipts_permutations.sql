-- Receipts replayed three times each and shuffled: whatever the order and however the
-- applier's batches cut them, the end is the same -- per provider, distinct orders of
-- the nine receipts drawn (seeded) from all 1,680 (SES: 560 of them; Twilio and
-- WhatsApp: 150 each), each applied in batches of 1 to 4. A message per order: its attempt and message end in the
-- state the statuses' ranks say, one event per distinct status, one receipt each.
BEGIN;
\ir ../../helpers.psql
SELECT plan(6);

SELECT (pg_temp.new_tenant('Shuffle Co') -> 'tenant' ->> 'id') AS t \gset
UPDATE app.tenants SET default_email_from = 'hi@shuffle.example' WHERE id = :'t';
SELECT pg_temp.new_sender(:'t', 'email', 'hi@shuffle.example') AS email_sender \gset
SELECT pg_temp.set_policy(:'t', '{"default_category": "transactional", "content_dedup_window": "0"}');
SELECT setseed(0.42);

-- Every distinct order of the multiset {a, b, c} x 3 (1,680), as arrays of indexes.
CREATE TEMP TABLE orders AS
WITH RECURSIVE seq(s, na, nb, nc) AS (
  SELECT ARRAY[]::int[], 0, 0, 0
  UNION ALL
  SELECT s || x, na + (x = 1)::int, nb + (x = 2)::int, nc + (x = 3)::int
    FROM seq, (VALUES (1), (2), (3)) v(x)
   WHERE cardinality(s) < 9
     AND na + (x = 1)::int <= 3 AND nb + (x = 2)::int <= 3 AND nc + (x = 3)::int <= 3
)
SELECT row_number() OVER () AS n, s FROM seq WHERE cardinality(s) = 9;

-- One message per order: sent on p_channel, handed off with p_answer, then the
-- order's receipts (p_statuses[i], with p_codes[i]) appended and applied in batches
-- of 1 to 4. Returns how many orders ended other than (p_attempt, p_message).
CREATE FUNCTION pg_temp.shuffle(p_tenant uuid, p_channel text, p_to text, p_provider text, p_answer text,
                                p_statuses text[], p_codes text[], p_attempt text, p_message text,
                                p_sample int DEFAULT NULL)
RETURNS TABLE (tried int, wrong int, bad_events int) LANGUAGE plpgsql AS $$
DECLARE
  v_order record;
  v_msg uuid;
  v_att uuid;
  v_sid text;
  v_applied int;
  v_request jsonb;
BEGIN
  tried := 0; wrong := 0; bad_events := 0;
  FOR v_order IN
    SELECT o.s FROM orders o ORDER BY CASE WHEN p_sample IS NULL THEN o.n ELSE NULL END, random()
     LIMIT coalesce(p_sample, 100000)
  LOOP
    tried := tried + 1;
    -- (an address per message: a hard bounce lists its address)
    v_request := jsonb_build_object('channel', p_channel, 'to', replace(p_to, '#', tried::text),
                                    'body', 'shuffle ' || tried)
                 || CASE WHEN p_channel = 'email' THEN '{"subject": "s"}'::jsonb ELSE '{}' END;
    v_msg := (private.submit_message(p_tenant, NULL, v_request) #>> '{message,id}')::uuid;
    v_att := pg_temp.attempt_of(v_msg);
    v_sid := p_provider || '-' || tried;
    PERFORM app.claim_attempt(v_att);
    PERFORM app.record_handoff(v_att, v_sid, p_answer);
    PERFORM app.record_receipts((SELECT jsonb_agg(jsonb_build_object(
              'provider', p_provider, 'attempt_id', v_att, 'provider_message_id', v_sid,
              'provider_status', p_statuses[i], 'error_code', p_codes[i]) ORDER BY k)
              FROM unnest(v_order.s) WITH ORDINALITY u(i, k)));
    LOOP
      v_applied := (app.apply_receipts(1 + floor(random() * 4)::int) ->> 'applied')::int;
      EXIT WHEN v_applied = 0;
    END LOOP;
    IF (SELECT a.status <> p_attempt OR m.status <> p_message
          FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id WHERE a.id = v_att) THEN
      wrong := wrong + 1;
    END IF;
    IF (SELECT count(*) FROM app.message_events WHERE message_id = v_msg AND event_type = 'provider_status')
       <> (SELECT count(DISTINCT s) FROM unnest(p_statuses || p_answer) s)
       OR (SELECT count(*) FROM app.receipts WHERE attempt_id = v_att)
          <> (SELECT count(DISTINCT s) FROM unnest(p_statuses || p_answer) s) THEN
      bad_events := bad_events + 1;
    END IF;
  END LOOP;
  RETURN NEXT;
END
$$;

SELECT is((SELECT count(*)::int FROM orders), 1680, '1,680 distinct orders of three statuses replayed three times');

-- SES: Send, Delivery, Bounce (SES documents no order): the bounce is the truth.
SELECT * INTO TEMP ses FROM pg_temp.shuffle(:'t', 'email', 'x#@example.com', 'ses', 'Send',
  ARRAY['Send', 'Delivery', 'Bounce'], ARRAY[NULL, NULL, 'Permanent:General'], 'undelivered', 'undelivered', 560);
SELECT results_eq('SELECT tried, wrong, bad_events FROM ses', $$VALUES (560, 0, 0)$$,
  'SES, Delivery and Bounce in 560 orders: undelivered every time, one event and one receipt per status');
SELECT is((SELECT count(*)::int FROM app.suppression_events WHERE tenant_id = :'t' AND list = 'hard_bounce'), 560,
  'and each hard bounce listed its address once');

-- Twilio: queued (also answered at hand-off), sent, delivered.
SELECT * INTO TEMP twilio FROM pg_temp.shuffle(:'t', 'sms', '+14155550150', 'twilio', 'queued',
  ARRAY['sent', 'queued', 'delivered'], ARRAY[NULL, NULL, NULL]::text[], 'delivered', 'delivered', 150);
SELECT results_eq('SELECT tried, wrong, bad_events FROM twilio', $$VALUES (150, 0, 0)$$,
  'Twilio, 150 orders of queued/sent/delivered: delivered every time');

-- WhatsApp: sent, delivered, read (read may come first: it implies delivered).
SELECT * INTO TEMP whatsapp FROM pg_temp.shuffle(:'t', 'whatsapp', '+14155550151', 'whatsapp', 'accepted',
  ARRAY['sent', 'delivered', 'read'], ARRAY[NULL, NULL, NULL]::text[], 'delivered', 'delivered', 150);
SELECT results_eq('SELECT tried, wrong, bad_events FROM whatsapp', $$VALUES (150, 0, 0)$$,
  'WhatsApp, 150 orders of sent/delivered/read: delivered every time');
SELECT is((SELECT count(*)::int FROM app.message_attempts a JOIN app.messages m ON m.id = a.message_id
            WHERE m.tenant_id = :'t' AND m.channel = 'whatsapp' AND a.provider_status = 'read'), 150,
  'and the attempt keeps the highest status, read');

SELECT * FROM finish();
ROLLBACK;
