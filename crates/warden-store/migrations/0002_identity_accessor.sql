-- The accessor of an investigation's secrets identity (never the
-- credential), so that it can be revoked after a control-plane restart.
ALTER TABLE investigations ADD COLUMN identity_accessor TEXT;
