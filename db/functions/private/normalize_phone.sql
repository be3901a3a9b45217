-- E.164 normalisation: drops a national trunk "(0)" after the country code
-- ("+44 (0)20 ..." is +4420...), strips the visual separators people type (spaces,
-- dots, dashes, parentheses) and turns an international 00 prefix into +; the result must be '+',
-- a non-zero digit and 7 to 15 digits in all. Anything else -- letters, national
-- numbers without a country code, non-ASCII digits, too long -- gives NULL.
CREATE OR REPLACE FUNCTION private.normalize_phone(p_input text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE  -- not sql: a SQL body with FROM is planned on every call
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n text := regexp_replace(
              regexp_replace(regexp_replace(btrim(p_input), '^(\+[0-9]{1,3})\s*\(0\)', '\1'),
                             '[\s().\-]', '', 'g'),
              '^00', '+');
BEGIN
  RETURN CASE WHEN n ~ '^\+[1-9][0-9]{6,14}$' THEN n END;
END
$$;
COMMENT ON FUNCTION private.normalize_phone(text) IS 'The E.164 form of a phone number, or NULL if it is not one.';
