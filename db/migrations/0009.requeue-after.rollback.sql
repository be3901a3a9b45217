DELETE FROM private.settings WHERE key = 'requeue_after';
