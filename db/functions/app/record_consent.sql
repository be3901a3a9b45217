-- POST /v1/consents: one event, for the key's tenant (scope compliance:write).
CREATE OR REPLACE FUNCTION app.record_consent(p_token text, p_event jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_who private.principal := private.authorize(p_token, 'compliance:write');
  v_result jsonb;
BEGIN
  v_result := private.record_consents(v_who.tenant_id, v_who.api_key_id, jsonb_build_array(p_event)) -> 0;
  IF v_result ? 'problem' THEN
    PERFORM private.raise_problem((v_result #>> '{problem,status}')::int, v_result #>> '{problem,code}',
                                  v_result #>> '{problem,detail}', v_result #>> '{problem,hint}');
  END IF;
  RETURN v_result -> 'event';
END
$$;
COMMENT ON FUNCTION app.record_consent(text, jsonb) IS
  'Records one consent event for the key''s tenant (compliance:write); HM4xx on a bad event.';
REVOKE ALL ON FUNCTION app.record_consent(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_consent(text, jsonb) TO hermes_api;
