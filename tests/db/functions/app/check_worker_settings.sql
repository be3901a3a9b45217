-- app.check_worker_settings: a worker whose provider calls may outlast the claim lease
-- is refused at start-up.
BEGIN;
\ir ../../helpers.psql
SELECT plan(6);

SELECT is(app.check_worker_settings(interval '15 seconds'),
  '{"claim_lease_seconds": 60, "max_provider_timeout_seconds": 30}'::jsonb, 'the default 15 s fits the 60 s lease');
SELECT is(pg_temp.problem($$SELECT app.check_worker_settings(interval '30.001 seconds')$$),
  'HM422 provider_timeout_exceeds_lease', 'a timeout over half the lease: HM422 provider_timeout_exceeds_lease');
SELECT is(pg_temp.problem_hint($$SELECT app.check_worker_settings(interval '2 minutes')$$),
  'Set HERMES_PROVIDER_TIMEOUT to at most 30 seconds, or raise claim_lease in private.settings.',
  'the hint says what to change');
SELECT is(pg_temp.problem($$SELECT app.check_worker_settings(interval '0')$$), 'HM422 invalid_provider_timeout',
  'zero: HM422 invalid_provider_timeout');
UPDATE private.settings SET value = '5 minutes' WHERE key = 'claim_lease';
SELECT is((app.check_worker_settings(interval '2 minutes')) ->> 'claim_lease_seconds', '300',
  'a longer lease admits a longer timeout');
SELECT ok(has_function_privilege('hermes_worker', 'app.check_worker_settings(interval)', 'EXECUTE')
          AND NOT has_function_privilege('hermes_api', 'app.check_worker_settings(interval)', 'EXECUTE'),
  'the workers call it, the API cannot');

SELECT * FROM finish();
ROLLBACK;
