-- The keyword of an inbound message, case-, whitespace- and punctuation-insensitive
-- (Unicode-normalized first, so full-width letters count): the letters of the whole
-- message, or -- for the opt-out words only -- of its first word ("Stop texting me" is
-- an opt-out: of the two possible mistakes, sending to someone who asked to stop is
-- the one Hermes never makes).
--   STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT -> opt_out (STOPALL: every channel)
--   START UNSTOP YES                                        -> opt_in
--   HELP INFO                                               -> help
-- Returns (keyword, action, channel), all NULL when there is none.
CREATE OR REPLACE FUNCTION private.detect_keyword(
  p_body text, OUT keyword text, OUT action text, OUT channel text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text  text := upper(normalize(coalesce(p_body, ''), NFKC));
  v_whole text := regexp_replace(v_text, '[^A-Z]', '', 'g');
  v_first text := regexp_replace(substring(btrim(regexp_replace(v_text, '[^A-Z]+', ' ', 'g')) FROM '^[A-Z]*'),
                                 '[^A-Z]', '', 'g');
BEGIN
  IF v_whole IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT') THEN
    keyword := v_whole;
  ELSIF v_first IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT')
        AND length(v_whole) <= 160 THEN
    keyword := v_first;
  ELSIF v_whole IN ('START', 'UNSTOP', 'YES', 'HELP', 'INFO') THEN
    keyword := v_whole;
  ELSE
    RETURN;
  END IF;
  action := CASE WHEN keyword IN ('START', 'UNSTOP', 'YES') THEN 'opt_in'
                 WHEN keyword IN ('HELP', 'INFO') THEN 'help'
                 ELSE 'opt_out' END;
  channel := CASE WHEN keyword = 'STOPALL' THEN 'all' WHEN action = 'help' THEN NULL ELSE 'sms' END;
END
$$;
COMMENT ON FUNCTION private.detect_keyword(text) IS
  'The keyword of an inbound message (STOP family, START family, HELP/INFO) and what it does.';
