-- app.get_tenant_policy / app.set_tenant_policy (private.set_tenant_policy,
-- private.tenant_policy_json): a tenant's compliance policy, validated, versioned, audited.
BEGIN;
\ir ../../helpers.psql
SELECT plan(10);

SELECT private.create_tenant(NULL, 'Policy Co', 'test', '+15005550006') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT is(app.get_tenant_policy(:'token'),
  '{"quiet_start": "08:00", "quiet_end": "21:00", "cooldown_same_seconds": 7776000, "cooldown_cross_seconds": 3888000,
    "content_dedup_seconds": 600, "default_category": "marketing", "version": 0}'::jsonb,
  'no policy row: the defaults (08:00-21:00, 90 and 45 days, 10 minutes, marketing), version 0');
SELECT is(app.set_tenant_policy(:'token', '{"quiet_start": "09:30", "cooldown_cross_seconds": 86400}')
            - 'version',
  '{"quiet_start": "09:30", "quiet_end": "21:00", "cooldown_same_seconds": 7776000, "cooldown_cross_seconds": 86400,
    "content_dedup_seconds": 600, "default_category": "marketing"}'::jsonb,
  'sets what is given, keeps the rest');
SELECT is(app.set_tenant_policy(:'token', '{"default_category": "transactional"}') -> 'version', '2'::jsonb,
  'each change bumps the version');
SELECT results_eq(format($$SELECT quiet_start, cooldown_cross, default_category FROM app.tenant_policies WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('09:30'::time, interval '1 day', 'transactional')$$, 'stored');
SELECT is((SELECT count(*)::int FROM app.audit_log WHERE action = 'policy.set' AND tenant_id = :'t'), 2, 'each change audited');
SELECT is(ARRAY[pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"quiet_start": "22:00"}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"quiet_start": "noonish"}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"content_dedup_seconds": 999999}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"cooldown_same_seconds": -1}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"default_category": "promo"}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"quiet": 1}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '[]')$$, :'token'))],
  ARRAY['HM422 invalid_quiet_window', 'HM422 invalid_policy', 'HM422 invalid_duration', 'HM422 invalid_duration',
        'HM422 invalid_category', 'HM422 unknown_field', 'HM422 invalid_request'],
  'bad windows, times, durations, categories, fields');
SELECT is((SELECT version FROM app.tenant_policies WHERE tenant_id = :'t'), 2, 'the refusals changed nothing');
SELECT pg_temp.new_key(:'t', 'reader', ARRAY['read']) ->> 'token' AS reader \gset
SELECT is(app.get_tenant_policy(:'reader') ->> 'quiet_start', '09:30', 'a read key reads it');
SELECT is(pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{}')$$, :'reader')), 'HM403 insufficient_scope',
  'but may not set it (compliance:write)');
SELECT is(private.tenant_policy_json(gen_random_uuid()) ->> 'default_category', 'marketing', 'any tenant without a row: defaults');

SELECT * FROM finish();
ROLLBACK;
