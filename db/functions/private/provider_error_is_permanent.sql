-- Whether a provider's refusal is final for this message. Twilio answers 400 with its
-- own code when it refuses a message (21211 invalid To, 21610 unsubscribed, 21614 not
-- SMS-capable, 21212 invalid From, 21617 too long ...): resending the same request
-- cannot succeed. 401/403/404 mean Hermes's credentials or account are wrong, 429 and
-- 5xx are Twilio's load: the operator or time fixes those, so they are retried. No
-- HTTP status at all (timeout, connection lost) is never permanent.
CREATE OR REPLACE FUNCTION private.provider_error_is_permanent(
  p_provider text, p_http_status int)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_provider
    WHEN 'twilio' THEN coalesce(p_http_status IN (400, 413, 422), false)
    -- SES v2: 400 is MessageRejected, BadRequest, MailFromDomainNotVerified (403 is the
    -- account's, 429 throttling, 5xx SES's: those are retried)
    WHEN 'ses' THEN coalesce(p_http_status = 400, false)
    -- FCM HTTP v1: 400 INVALID_ARGUMENT, 404 UNREGISTERED (the token is dead)
    WHEN 'fcm' THEN coalesce(p_http_status IN (400, 404), false)
    WHEN 'whatsapp' THEN coalesce(p_http_status = 400, false)
    WHEN 'vonage' THEN coalesce(p_http_status IN (400, 422), false)
    ELSE false
  END
$$;
COMMENT ON FUNCTION private.provider_error_is_permanent(text, int) IS
  'True when a provider error means the message can never be sent as it is (no retry).';

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
