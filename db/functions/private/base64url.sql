-- Unpadded base64url (RFC 4648 section 5), as JWTs use.
CREATE OR REPLACE FUNCTION private.base64url(p_data bytea)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT translate(encode(p_data, 'base64'), E'+/=\n', '-_')
$$;
COMMENT ON FUNCTION private.base64url(bytea) IS 'Unpadded base64url encoding.';
