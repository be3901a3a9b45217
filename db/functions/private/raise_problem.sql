-- Every business error Hermes raises goes through here, so that clients get one shape:
--   SQLSTATE  HM<http status>  (class HM is Hermes's own)
--   MESSAGE   a sentence for humans
--   DETAIL    the stable, machine-readable code (e.g. invalid_to)
--   HINT      what to do about it
-- The API maps these to RFC 9457 problem details; psql shows them as they are.
-- VOLATILE: an IMMUTABLE function with constant arguments may be folded (and so
-- raise) at plan time, inside a branch that never runs.
CREATE OR REPLACE FUNCTION private.raise_problem(
  p_status int, p_code text, p_message text, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION USING
    ERRCODE = 'HM' || p_status::text,
    MESSAGE = p_message,
    DETAIL = p_code,
    HINT = coalesce(p_hint, '');
END
$$;
COMMENT ON FUNCTION private.raise_problem(int, text, text, text) IS
  'Raises SQLSTATE HM<status> with DETAIL = machine-readable code and a HINT.';
