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
    'version', coalesce(p.version, 0))
    FROM (SELECT 1) one LEFT JOIN app.tenant_policies p ON p.tenant_id = p_tenant_id
$$;
COMMENT ON FUNCTION private.tenant_policy_json(uuid) IS 'A tenant''s compliance policy with the defaults filled in.';

-- Sets part of a tenant's policy: {"quiet_start": "HH:MM", "quiet_end": "HH:MM",
-- "cooldown_same_seconds", "cooldown_cross_seconds", "content_dedup_seconds",
-- "default_category": "marketing" | "transactional"}; what is not given is kept. The
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
                   'content_dedup_seconds', 'default_category');
  IF v_unknown IS NOT NULL THEN
    PERFORM private.raise_problem(422, 'unknown_field', format('Unknown field(s): %s.', v_unknown),
      'A policy takes quiet_start, quiet_end, cooldown_same_seconds, cooldown_cross_seconds, content_dedup_seconds, default_category.');
  END IF;
  v_new := v_old || p_policy;
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
                                        content_dedup_window, default_category)
  VALUES (p_tenant_id, (v_new ->> 'quiet_start')::time, (v_new ->> 'quiet_end')::time,
          (v_new ->> 'cooldown_same_seconds')::bigint * interval '1 second',
          (v_new ->> 'cooldown_cross_seconds')::bigint * interval '1 second',
          (v_new ->> 'content_dedup_seconds')::bigint * interval '1 second', v_new ->> 'default_category')
  ON CONFLICT (tenant_id) DO UPDATE
    SET quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
        cooldown_same = excluded.cooldown_same, cooldown_cross = excluded.cooldown_cross,
        content_dedup_window = excluded.content_dedup_window, default_category = excluded.default_category,
        version = p.version + 1, updated_at = now();
  PERFORM private.audit(p_tenant_id, p_actor_key_id, 'policy.set', p_tenant_id::text,
                        jsonb_build_object('before', v_old, 'given', p_policy));
  RETURN private.tenant_policy_json(p_tenant_id);
END
$$;
COMMENT ON FUNCTION private.set_tenant_policy(uuid, uuid, jsonb) IS
  'Sets part of a tenant''s compliance policy (quiet window, cooldowns, dedup window, default category).';
