-- Whether a provider's refusal is final for this message. Twilio answers 400 with its
-- own code when it refuses a message (21211 invalid To, 21610 unsubscribed, 21614 not
-- SMS-capable, 21212 invalid From, 21617 too long ...): resending the same request
-- cannot succeed. 401/403/404 mean Hermes's credentials or account are wrong, 429 and
-- 5xx are Twilio's load: the operator or time fixes those, so they are retried. No
-- HTTP status at all (timeout, connection lost) is never permanent.
DROP FUNCTION IF EXISTS private.provider_error_is_permanent(text, int);
CREATE OR REPLACE FUNCTION private.provider_error_is_permanent(
  p_provider text, p_http_status int, p_error_code text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_provider
    WHEN 'twilio' THEN coalesce(p_http_status IN (400, 413, 422), false)
    -- SES v2: 400 is MessageRejected, BadRequest, MailFromDomainNotVerified (403 is the
    -- account's, 429 throttling, 5xx SES's: those are retried)
    WHEN 'ses' THEN coalesce(p_http_status = 400, false)
    -- FCM HTTP v1: 400 INVALID_ARGUMENT, 404 UNREGISTERED (the token is dead), 403
    -- SENDER_ID_MISMATCH (the token belongs to another project); a 403 without that code
    -- is Hermes's credentials (retried)
    WHEN 'fcm' THEN coalesce(p_http_status IN (400, 404), false)
                    OR coalesce(p_error_code IN ('UNREGISTERED', 'INVALID_ARGUMENT', 'SENDER_ID_MISMATCH'), false)
    -- WhatsApp Cloud API (Graph API): 400 is a refusal of the message (131026 not
    -- deliverable, 131047 outside the 24-hour window, 131051 unsupported type, 132001 no such
    -- template, 100
    -- invalid parameter ...) except the Graph API's throttling codes, which it also
    -- answers with 400: 4, 80007, 130429 (rate limit), 131048 (spam rate limit), 131056
    -- (pair rate limit) -- those are retried
    WHEN 'whatsapp' THEN coalesce(p_http_status = 400, false)
                         AND coalesce(p_error_code NOT IN ('4', '80007', '130429', '131048', '131056'), true)
    -- Vonage SMS API: HTTP 200 with the message's status -- 2 missing and 3 invalid
    -- parameters, 6 invalid message, 7 number barred, 15 invalid sender, 29 destination
    -- not allowed are final; 1 throttled, 4 credentials, 5 internal, 8 account barred,
    -- 9 quota are not
    WHEN 'vonage' THEN coalesce(p_http_status IN (400, 422), false)
                       OR coalesce(p_error_code IN ('2', '3', '6', '7', '15', '29'), false)
    ELSE false
  END
$$;
COMMENT ON FUNCTION private.provider_error_is_permanent(text, int, text) IS
  'True when a provider error (HTTP status, the provider''s own code) means the message can never be sent as it is (no retry).';

-- The suppression list a provider's refusal puts the address on, or NULL: FCM's
-- UNREGISTERED means the app is gone from the device (the token will never work again)
-- -> hard_bounce, so that no later message (or cascade step) is planned to it.
CREATE OR REPLACE FUNCTION private.provider_error_suppression(p_provider text, p_error_code text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN p_provider = 'fcm' AND p_error_code = 'UNREGISTERED' THEN 'hard_bounce' END
$$;
COMMENT ON FUNCTION private.provider_error_suppression(text, text) IS
  'The suppression list a provider refusal puts the address on (FCM UNREGISTERED -> hard_bounce), or NULL.';

-- Whether a provider's refusal means the recipient opted out of this sender: Twilio
-- 21610 ("Attempt to send to unsubscribed recipient": they replied STOP).
CREATE OR REPLACE FUNCTION private.provider_error_is_opt_out(p_provider text, p_error_code text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(p_provider = 'twilio' AND p_error_code = '21610', false)
$$;
COMMENT ON FUNCTION private.provider_error_is_opt_out(text, text) IS
  'True when a provider error means the recipient opted out (recorded as an opt-out consent event).';
