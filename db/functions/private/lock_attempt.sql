-- Locks one attempt for the rest of the transaction and returns it; a NULL row (all
-- fields NULL) when there is none. The id alone finds the partition (UUIDv7 stamped
-- with the message's created_at). Every function that changes an attempt starts
-- here, so all of them lock the attempt first and its message second.
CREATE OR REPLACE FUNCTION private.lock_attempt(p_attempt_id uuid)
RETURNS app.message_attempts
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM app.message_attempts
   WHERE id = p_attempt_id AND message_created_at = private.uuid7_time(p_attempt_id)
   FOR UPDATE
$$;
COMMENT ON FUNCTION private.lock_attempt(uuid) IS
  'SELECT ... FOR UPDATE of one attempt by id (partition-pruned); NULL row if none.';
