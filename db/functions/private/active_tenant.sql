-- The tenant a command acts for, refused unless it exists (HM404 tenant_not_found)
-- and is active (HM403 tenant_suspended). One check for every intake command.
CREATE OR REPLACE FUNCTION private.active_tenant(p_tenant_id uuid)
RETURNS app.tenants
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tenant app.tenants;
BEGIN
  SELECT * INTO v_tenant FROM app.tenants WHERE id = p_tenant_id;
  IF NOT FOUND THEN
    PERFORM private.raise_problem(404, 'tenant_not_found', 'No such tenant.');
  ELSIF v_tenant.status <> 'active' THEN
    PERFORM private.raise_problem(403, 'tenant_suspended', 'The tenant is suspended.');
  END IF;
  RETURN v_tenant;
END
$$;
COMMENT ON FUNCTION private.active_tenant(uuid) IS
  'The tenant row, or HM404 tenant_not_found / HM403 tenant_suspended.';
