-- private.message_status_rank and Twilio's rows of private.provider_statuses: the ranks
-- that make status changes monotonic.
BEGIN;
\ir ../../helpers.psql
SELECT plan(8);

SELECT results_eq($$
  SELECT s, private.message_status_rank(s)
    FROM unnest(ARRAY['queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'rejected', 'unknown'])
         WITH ORDINALITY v(s, n) ORDER BY n
$$, $$ VALUES ('queued', 0), ('sending', 10), ('sent', 20), ('delivered', 100), ('undelivered', 100),
              ('failed', 100), ('rejected', 100), ('unknown', 100) $$,
  'message statuses rank queued < sending < sent < terminal (100)');
SELECT is(private.message_status_rank('bogus'), NULL, 'an unknown message status has no rank');
SELECT is(private.message_status_rank(NULL), NULL, 'NULL has no rank');
SELECT is_empty($$
  SELECT c.conname FROM pg_constraint c
   WHERE c.conrelid = 'app.messages'::regclass AND c.contype = 'c'
     AND pg_get_constraintdef(c.oid) LIKE '%status%queued%'
     AND EXISTS (SELECT 1 FROM regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''::text', 'g') m
                  WHERE private.message_status_rank(m[1]) IS NULL)
$$, 'every status allowed by app.messages has a rank');

CREATE FUNCTION pg_temp.twilio(p_status text, OUT rank int, OUT message_status text)
LANGUAGE sql AS $$
  SELECT s.rank, s.message_status FROM private.provider_statuses s WHERE s.provider = 'twilio' AND s.status = p_status
$$;
SELECT results_eq($$
  SELECT s, (pg_temp.twilio(s)).rank, (pg_temp.twilio(s)).message_status
    FROM unnest(ARRAY['accepted', 'scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered',
                      'failed', 'canceled', 'read']) WITH ORDINALITY v(s, n) ORDER BY n
$$, $$ VALUES ('accepted', 10, 'sent'), ('scheduled', 10, 'sent'), ('queued', 20, 'sent'),
              ('sending', 30, 'sent'), ('sent', 40, 'sent'), ('delivered', 100, 'delivered'),
              ('undelivered', 100, 'undelivered'), ('failed', 100, 'failed'), ('canceled', 100, 'failed'),
              ('read', 110, 'delivered') $$,
  'Twilio statuses: life-cycle ranks and the message status each implies');
SELECT ok((pg_temp.twilio('receiving')).rank IS NULL, 'an unknown Twilio status has no rank');
SELECT ok((pg_temp.twilio('Delivered')).rank IS NULL, 'Twilio statuses are case-sensitive');
SELECT is_empty($$
  SELECT s FROM unnest(ARRAY['delivered', 'undelivered', 'failed', 'canceled']) s
   WHERE private.message_status_rank((pg_temp.twilio(s)).message_status) <> 100
$$, 'the terminal Twilio statuses map to terminal message statuses');

SELECT * FROM finish();
ROLLBACK;
