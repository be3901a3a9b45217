-- An HS256 JWT over p_claims, signed with the deployment's jwt_secret (the one
-- PostgREST verifies with; see private.postgrest_pre_config).
CREATE OR REPLACE FUNCTION private.sign_jwt(p_claims jsonb)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT signing_input || '.' || private.base64url(private.hmac_sha256(
           convert_to((SELECT value FROM private.settings WHERE key = 'jwt_secret'), 'UTF8'),
           convert_to(signing_input, 'UTF8')))
  FROM (SELECT private.base64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8'))
               || '.' || private.base64url(convert_to(p_claims::text, 'UTF8')) AS signing_input) s
$$;
COMMENT ON FUNCTION private.sign_jwt(jsonb) IS 'HS256 JWT over the claims, signed with private.settings.jwt_secret.';
