-- private.raise_problem: SQLSTATE HM<status>, MESSAGE, DETAIL = code, HINT.
BEGIN;
\ir ../../helpers.psql
SELECT plan(8);

SELECT throws_ok($$SELECT private.raise_problem(422, 'invalid_to', 'Not a phone number.', 'Use E.164.')$$,
  'HM422', 'Not a phone number.', 'SQLSTATE HM422 with the message');
SELECT is(pg_temp.problem($$SELECT private.raise_problem(422, 'invalid_to', 'Not a phone number.', 'Use E.164.')$$),
  'HM422 invalid_to', 'DETAIL is the machine-readable code');
SELECT is(pg_temp.problem_hint($$SELECT private.raise_problem(422, 'invalid_to', 'm', 'Use E.164.')$$),
  'Use E.164.', 'HINT is the hint');
SELECT is(pg_temp.problem_hint($$SELECT private.raise_problem(404, 'x', 'm')$$), '',
  'no hint: an empty HINT');
SELECT throws_ok($$SELECT private.raise_problem(404, 'message_not_found', 'No such message.')$$,
  'HM404', 'No such message.', 'HM404');
SELECT throws_ok($$SELECT private.raise_problem(409, 'c', 'Conflict.')$$, 'HM409', 'Conflict.', 'HM409');
SELECT throws_ok($$SELECT private.raise_problem(401, 'c', 'Who are you?')$$, 'HM401', 'Who are you?', 'HM401');
SELECT throws_ok($$SELECT private.raise_problem(403, 'c', 'No.')$$, 'HM403', 'No.', 'HM403');

SELECT * FROM finish();
ROLLBACK;
