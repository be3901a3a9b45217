-- Everything back to the role running the rollback (the database owner).
DO $$
BEGIN
  EXECUTE format('REASSIGN OWNED BY hermes_owner TO %I', current_user);
  EXECUTE 'DROP OWNED BY hermes_owner';
END
$$;
