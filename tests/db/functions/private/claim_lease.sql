-- private.claim_lease: the setting, or 60 s when it is absent.
BEGIN;
\ir ../../helpers.psql
SELECT plan(3);

SELECT is(private.claim_lease(), (SELECT value::interval FROM private.settings WHERE key = 'claim_lease'),
  'the claim_lease setting');
UPDATE private.settings SET value = '2 seconds' WHERE key = 'claim_lease';
SELECT is(private.claim_lease(), interval '2 seconds', 'follows a change');
DELETE FROM private.settings WHERE key = 'claim_lease';
SELECT is(private.claim_lease(), interval '60 seconds', 'absent: 60 seconds');

SELECT * FROM finish();
ROLLBACK;
