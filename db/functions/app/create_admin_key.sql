-- Creates a platform (admin) key. Deliberately granted to no role: an operator runs
-- it as the database owner (make run does so once, for the demo).
CREATE OR REPLACE FUNCTION app.create_admin_key(p_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key jsonb;
BEGIN
  v_key := private.mint_api_key(NULL, p_name, ARRAY['admin']);
  PERFORM private.audit(NULL, NULL, 'api_key.create', v_key ->> 'id',
                        jsonb_build_object('scopes', v_key -> 'scopes', 'by', current_user));
  RETURN v_key;
END
$$;
COMMENT ON FUNCTION app.create_admin_key(text) IS 'Operator-only: creates a platform admin key; returns it with its token.';
