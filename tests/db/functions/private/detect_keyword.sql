-- private.detect_keyword: case-, whitespace- and punctuation-insensitive keywords.
BEGIN;
\ir ../../helpers.psql
SELECT plan(9);

CREATE FUNCTION pg_temp.kw(p_body text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(keyword || ' ' || action || coalesce(' ' || channel, ''), 'none') FROM private.detect_keyword(p_body) $$;

SELECT is(ARRAY[pg_temp.kw('STOP'), pg_temp.kw('stop'), pg_temp.kw(' Stop! '), pg_temp.kw('s.t.o.p'), pg_temp.kw('S T O P'),
                pg_temp.kw(E'stop\n'), pg_temp.kw('ＳＴＯＰ'), pg_temp.kw('"Stop."')],
  ARRAY['STOP opt_out sms', 'STOP opt_out sms', 'STOP opt_out sms', 'STOP opt_out sms', 'STOP opt_out sms',
        'STOP opt_out sms', 'STOP opt_out sms', 'STOP opt_out sms'],
  'STOP whatever the case, spacing, punctuation or width');
SELECT is(ARRAY[pg_temp.kw('unsubscribe'), pg_temp.kw('Cancel'), pg_temp.kw('END'), pg_temp.kw('quit'), pg_temp.kw('Revoke'),
                pg_temp.kw('opt-out'), pg_temp.kw('Opt Out')],
  ARRAY['UNSUBSCRIBE opt_out sms', 'CANCEL opt_out sms', 'END opt_out sms', 'QUIT opt_out sms', 'REVOKE opt_out sms',
        'OPTOUT opt_out sms', 'OPTOUT opt_out sms'],
  'the whole opt-out family');
SELECT is(pg_temp.kw('STOPALL'), 'STOPALL opt_out all', 'STOPALL opts out of every channel');
SELECT is(ARRAY[pg_temp.kw('Stop texting me'), pg_temp.kw('STOP, please!'), pg_temp.kw('cancel my order')],
  ARRAY['STOP opt_out sms', 'STOP opt_out sms', 'CANCEL opt_out sms'],
  'an opt-out word first in a longer message counts (the safe mistake)');
SELECT is(ARRAY[pg_temp.kw('start'), pg_temp.kw('UNSTOP'), pg_temp.kw('Yes!')],
  ARRAY['START opt_in sms', 'UNSTOP opt_in sms', 'YES opt_in sms'], 'START, UNSTOP, YES opt in');
SELECT is(ARRAY[pg_temp.kw('start now'), pg_temp.kw('yes please')], ARRAY['none', 'none'],
  'an opt-in must be the whole message');
SELECT is(ARRAY[pg_temp.kw('help'), pg_temp.kw('Info?')], ARRAY['HELP help', 'INFO help'], 'HELP and INFO');
SELECT is(ARRAY[pg_temp.kw('Don''t stop'), pg_temp.kw('stopwatch'), pg_temp.kw('the end'), pg_temp.kw('hello'),
                pg_temp.kw(''), pg_temp.kw(NULL), pg_temp.kw('Endless')],
  ARRAY['none', 'none', 'none', 'none', 'none', 'none', 'none'], 'other messages have no keyword');
SELECT is(pg_temp.kw(repeat('stop ', 100)), 'none', 'a long message starting with stop is not a keyword (over 160 letters)');

SELECT * FROM finish();
ROLLBACK;
