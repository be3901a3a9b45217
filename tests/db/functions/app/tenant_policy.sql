-- app.get_tenant_policy / app.set_tenant_policy (private.set_tenant_policy,
-- private.tenant_policy_json): a tenant's compliance policy, validated, versioned, audited.
BEGIN;
\ir ../../helpers.psql
SELECT plan(16);

SELECT private.create_tenant(NULL, 'Policy Co', 'test', '+15005550006') AS r \gset
SELECT (:'r'::jsonb) -> 'tenant' ->> 'id' AS t, (:'r'::jsonb) -> 'api_key' ->> 'token' AS token \gset
SELECT is(app.get_tenant_policy(:'token'),
  '{"quiet_start": "08:00", "quiet_end": "21:00", "cooldown_same_seconds": 7776000, "cooldown_cross_seconds": 3888000,
    "content_dedup_seconds": 600, "default_category": "marketing", "version": 0,
    "cascade_channels": ["sms"], "step_timeouts": {"sms": 300, "email": 900, "push": 300, "whatsapp": 300},
    "providers": {}}'::jsonb,
  'no policy row: the defaults (08:00-21:00, 90 and 45 days, 10 minutes, marketing; SMS only, default providers), version 0');
SELECT is(app.set_tenant_policy(:'token', '{"quiet_start": "09:30", "cooldown_cross_seconds": 86400}')
            - 'version',
  '{"quiet_start": "09:30", "quiet_end": "21:00", "cooldown_same_seconds": 7776000, "cooldown_cross_seconds": 86400,
    "content_dedup_seconds": 600, "default_category": "marketing",
    "cascade_channels": ["sms"], "step_timeouts": {"sms": 300, "email": 900, "push": 300, "whatsapp": 300},
    "providers": {}}'::jsonb,
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
-- The cascade's defaults and the routing.
SELECT is(app.set_tenant_policy(:'token', '{"cascade_channels": ["email", "sms", "push"], "step_timeouts": {"sms": 60},
                                            "providers": {"sms": ["vonage", "twilio"]}}')
            - ARRAY['quiet_start', 'quiet_end', 'cooldown_same_seconds', 'cooldown_cross_seconds', 'content_dedup_seconds',
                    'default_category', 'version'],
  '{"cascade_channels": ["email", "sms", "push"], "step_timeouts": {"sms": 60, "email": 900, "push": 300, "whatsapp": 300},
    "providers": {"sms": ["vonage", "twilio"]}}'::jsonb,
  'cascade order, step timeouts (merged per channel) and providers per channel');
SELECT results_eq(format($$SELECT cascade_channels, step_timeouts ->> 'sms', channel_providers FROM app.tenant_policies WHERE tenant_id = %L$$, :'t'),
  $$VALUES ('{email,sms,push}'::text[], '60', '{"sms": ["vonage", "twilio"]}'::jsonb)$$, 'stored');
SELECT is(app.set_tenant_policy(:'token', '{"providers": {"sms": [], "email": ["ses"]}}') -> 'providers',
  '{"email": ["ses"]}'::jsonb, 'an empty list is the default again; other channels merge');
SELECT is(ARRAY[pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"cascade_channels": []}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"cascade_channels": ["fax"]}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"cascade_channels": "sms"}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"step_timeouts": {"sms": 0}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"step_timeouts": {"sms": "soon"}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"step_timeouts": {"fax": 10}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"step_timeouts": {"sms": 1.5}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"providers": {"sms": ["ses"]}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"providers": {"sms": ["twilio", "twilio"]}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"providers": {"sms": "twilio"}}')$$, :'token')),
                pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{"providers": {"sms": [1]}}')$$, :'token'))],
  ARRAY['HM422 invalid_cascade', 'HM422 invalid_cascade', 'HM422 invalid_cascade',
        'HM422 invalid_step_timeouts', 'HM422 invalid_step_timeouts', 'HM422 invalid_step_timeouts', 'HM422 invalid_step_timeouts',
        'HM422 invalid_providers', 'HM422 invalid_providers', 'HM422 invalid_providers', 'HM422 invalid_providers'],
  'bad cascades, timeouts, providers (another channel''s, twice, not a list, not a name)');
SELECT is(pg_temp.problem_hint(format($$SELECT app.set_tenant_policy(%L, '{"providers": {"sms": ["ses"]}}')$$, :'token')),
  'e.g. {"sms": ["twilio", "vonage"]}; the providers: email ses, push fcm, sms twilio, sms vonage, whatsapp whatsapp.',
  'the hint lists the providers');
SELECT (private.submit_message(:'t', NULL, '{"to": "+14155550123", "body": "routed", "category": "transactional"}')
        -> 'message' ->> 'id') AS routed \gset
SELECT app.set_tenant_policy(:'token', '{"providers": {"sms": ["vonage"]}}') IS NOT NULL AS p2 \gset
SELECT (private.submit_message(:'t', NULL, '{"to": "+14155550124", "body": "routed", "category": "transactional"}')
        -> 'message' ->> 'id') AS routed2 \gset
SELECT is(ARRAY(SELECT provider FROM app.message_attempts WHERE message_id IN (:'routed', :'routed2') ORDER BY message_id),
  ARRAY['twilio', 'vonage'], 'a step goes through the tenant''s first provider for its channel, else the default');

SELECT pg_temp.new_key(:'t', 'reader', ARRAY['read']) ->> 'token' AS reader \gset
SELECT is(app.get_tenant_policy(:'reader') ->> 'quiet_start', '09:30', 'a read key reads it');
SELECT is(pg_temp.problem(format($$SELECT app.set_tenant_policy(%L, '{}')$$, :'reader')), 'HM403 insufficient_scope',
  'but may not set it (compliance:write)');
SELECT is(private.tenant_policy_json(gen_random_uuid()) ->> 'default_category', 'marketing', 'any tenant without a row: defaults');

SELECT * FROM finish();
ROLLBACK;
