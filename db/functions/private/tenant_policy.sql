-- A tenant's compliance policy (app.tenant_policies), as JSON, with the defaults where
-- the tenant set nothing.
CREATE OR REPLACE FUNCTION private.tenant_policy_json(p_tenant_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'quiet_start', to_char(coalesce(p.quiet_start, time '08:00'), 'HH24:MI'),
    'quiet_end', to_char(coalesce(p.quiet_end, time '21:00'), 'HH24:MI'),
    'cooldown_same_seconds', extract(epoch FROM coalesce(p.cooldown_same, interval '90 days'))::bigint,
    'cooldown_cross_seconds', extract(epoch FROM coalesce(p.cooldown_cross, interval '45 days'))::bigint,
    'content_dedup_seconds', extract(epoch FROM coalesce(p.content_dedup_window, interval '10 minutes'))::bigint,
    'default_category', coalesce(p.default_category, 'marketing'),
    'cascade_channels', to_jsonb(coalesce(p.cascade_channels, '{sms}')),
    'step_timeouts', coalesce(p.step_timeouts, '{"sms": 300, "email": 900, "push": 300, "whatsapp": 300}'),
    'providers', coalesce(p.channel_providers, '{}'),
    'version', coalesce(p.version, 0))
    FROM (SELECT 1) one LEFT JOIN app.tenant_policies p ON p.tenant_id = p_tenant_id
$$;
COMMENT ON FUNCTION private.tenant_policy_json(uuid) IS 'A tenant''s compliance policy with the defaults filled in.';

-- Sets part of a tenant's policy: {"quiet_start": "HH:MM", "quiet_end": "HH:MM",
-- "cooldown_same_seconds", "cooldown_cross_seconds", "content_dedup_seconds",
-- "default_category": "marketing" | "transactional", "cascade_channels": [channel, ...]
-- (the order of a message to a contact that names none), "step_timeouts": {channel:
-- seconds} (how long a step waits for its final receipt), "providers": {channel:
-- [provider, ...]} (the order a channel's providers are tried in; [] or absent: the
-- default)}; what is not given is kept (step_timeouts and providers merge per channel). The
-- quiet window only ever narrows the legal one (the rules intersect). Each change bumps
-- the version that decisions record. Returns the policy.
CREATE OR REPLACE FUNCTION private.set_tenant_policy(p_tenant_id uuid, p_actor_key_id uuid, p_policy jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_unknown text;
  v_old     jsonb := private.tenant_policy_json(p_tenant_id);
  v_new     jsonb;
BEGIN
  IF p_policy IS NULL OR jsonb_typeof(p_policy) <> 'object' THEN
    PERFORM private.raise_problem(422, 'invalid_request', 'A policy must be a JSON object.');
  END IF;
  SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(p_policy) k
   WHERE k NOT IN ('quiet_start', 'quiet_end', 'cooldown_same_seconds', 'cooldown_cross_seconds',
                   'content_dedup_seconds', 'default_category', 'cascade_channels', 'step_timeouts',
                   'providers');
  IF v_unknown IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'unknown_field', format('Unknown field(s): %s.', v_unknown),
      'A policy takes quiet_start, quiet_end, cooldown_same_seconds, cooldown_cross_seconds, content_dedup_seconds, default_category, cascade_channels, step_timeouts, providers.');
  END IF;
  IF p_policy ? 'cascade_channels' AND (
       jsonb_typeof(p_policy -> 'cascade_channels') IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_policy -> 'cascade_channels') NOT BETWEEN 1 AND 5
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_policy -> 'cascade_channels') c
                   WHERE jsonb_typeof(c) <> 'string' OR c #>> '{}' NOT IN ('sms', 'email', 'push', 'whatsapp'))) THEN
    PERFORM private.raise_problem(422, 'invalid_cascade', 'cascade_channels is a list of 1 to 5 channels.',
      'Channels are sms, email, push and whatsapp, e.g. ["email", "sms"].');
  END IF;
  IF p_policy ? 'step_timeouts' AND (
       jsonb_typeof(p_policy -> 'step_timeouts') IS DISTINCT FROM 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(p_policy -> 'step_timeouts') t
                   WHERE t.key NOT IN ('sms', 'email', 'push', 'whatsapp')
                      OR CASE WHEN jsonb_typeof(t.value) <> 'number' THEN true
                              ELSE t.value::numeric <> trunc(t.value::numeric)
                                   OR t.value::numeric NOT BETWEEN 1 AND 604800 END)) THEN
    PERFORM private.raise_problem(422, 'invalid_step_timeouts',
      'step_timeouts maps channels to whole seconds, 1 to 604800 (7 days).', 'e.g. {"sms": 120, "email": 900}.');
  END IF;
  IF p_policy ? 'providers' AND (
       jsonb_typeof(p_policy -> 'providers') IS DISTINCT FROM 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(p_policy -> 'providers') c
                   WHERE c.key NOT IN ('sms', 'email', 'push', 'whatsapp')
                      OR CASE WHEN jsonb_typeof(c.value) <> 'array' THEN true
                              ELSE jsonb_array_length(c.value) > 5
                                   OR (SELECT count(DISTINCT x) <> count(*) FROM jsonb_array_elements(c.value) x)
                                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(c.value) x
                                               WHERE jsonb_typeof(x) <> 'string'
                                                  OR NOT EXISTS (SELECT 1 FROM private.providers p
                                                                  WHERE p.provider = x #>> '{}' AND p.channel = c.key))
                         END)) THEN
    PERFORM private.raise_problem(422, 'invalid_providers',
      'providers maps a channel to up to 5 distinct providers of that channel, in the order they are tried.',
      format('e.g. {"sms": ["twilio", "vonage"]}; the providers: %s.',
             (SELECT string_agg(p.channel || ' ' || p.provider, ', ' ORDER BY p.channel, p.provider) FROM private.providers p)));
  END IF;
  v_new := v_old || (p_policy - 'step_timeouts' - 'providers')
           || jsonb_build_object('step_timeouts', (v_old -> 'step_timeouts') || coalesce(p_policy -> 'step_timeouts', '{}'),
                                 'providers', jsonb_strip_nulls((v_old -> 'providers') || coalesce(p_policy -> 'providers', '{}')));
  BEGIN
    IF (v_new ->> 'quiet_start')::time >= (v_new ->> 'quiet_end')::time THEN
      PERFORM private.raise_problem(422, 'invalid_quiet_window', 'quiet_start must be before quiet_end (one local day).');
    END IF;
    IF (v_new ->> 'cooldown_same_seconds')::bigint < 0 OR (v_new ->> 'cooldown_cross_seconds')::bigint < 0
       OR (v_new ->> 'content_dedup_seconds')::bigint NOT BETWEEN 0 AND 7 * 86400 THEN
      PERFORM private.raise_problem(422, 'invalid_duration',
        'Cooldowns are 0 or more seconds; the content-dedup window is 0 to 604800 seconds (7 days).');
    END IF;
  EXCEPTION WHEN invalid_datetime_format OR invalid_text_representation OR datetime_field_overflow
                 OR numeric_value_out_of_range THEN
    PERFORM private.raise_problem(422, 'invalid_policy', 'Times are "HH:MM"; durations are whole seconds.');
  END;
  IF v_new ->> 'default_category' NOT IN ('marketing', 'transactional') THEN
    PERFORM private.raise_problem(422, 'invalid_category', 'default_category must be marketing or transactional.');
  END IF;
  INSERT INTO app.tenant_policies AS p (tenant_id, quiet_start, quiet_end, cooldown_same, cooldown_cross,
                                        content_dedup_window, default_category, cascade_channels,
                                        step_timeouts, channel_providers)
  VALUES (p_tenant_id, (v_new ->> 'quiet_start')::time, (v_new ->> 'quiet_end')::time,
          (v_new ->> 'cooldown_same_seconds')::bigint * interval '1 second',
          (v_new ->> 'cooldown_cross_seconds')::bigint * interval '1 second',
          (v_new ->> 'content_dedup_seconds')::bigint * interval '1 second', v_new ->> 'default_category',
          ARRAY(SELECT jsonb_array_elements_text(v_new -> 'cascade_channels')),
          v_new -> 'step_timeouts',
          -- an empty list is the default: not stored
          (SELECT coalesce(jsonb_object_agg(c.key, c.value), '{}') FROM jsonb_each(v_new -> 'providers') c
            WHERE jsonb_array_length(c.value) > 0))
  ON CONFLICT (tenant_id) DO UPDATE
    SET quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
        cooldown_same = excluded.cooldown_same, cooldown_cross = excluded.cooldown_cross,
        content_dedup_window = excluded.content_dedup_window, default_category = excluded.default_category,
        cascade_channels = excluded.cascade_channels, step_timeouts = excluded.step_timeouts,
        channel_providers = excluded.channel_providers,
        version = p.version + 1, updated_at = now();
  PERFORM private.audit(p_tenant_id, p_actor_key_id, 'policy.set', p_tenant_id::text,
                        jsonb_build_object('before', v_old, 'given', p_policy));
  RETURN private.tenant_policy_json(p_tenant_id);
END
$$;
COMMENT ON FUNCTION private.set_tenant_policy(uuid, uuid, jsonb) IS
  'Sets part of a tenant''s policy (quiet window, cooldowns, dedup window, default category, cascade order, step timeouts, providers).';
