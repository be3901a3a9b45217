-- One retry policy, SQL's. A send job that fails unexpectedly (the database went away
-- mid-batch, a worker bug) is held by pgqueuer as 'failed'; the workers no longer
-- re-queue it themselves. app.run_maintenance's sweep gives its attempt a new job once
-- the attempt has been idle this long: longer than the claim lease (60 s), so a live
-- claim is never raced, and short enough that a database blip delays a message by
-- minutes, not by the old fixed 10 (the maintenance schedule runs every minute).
INSERT INTO private.settings (key, value) VALUES ('requeue_after', '2 minutes');
