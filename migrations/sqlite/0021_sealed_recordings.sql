-- Recordings sealed at rest (`[media] encrypt_recordings`, src/storage/sealing.rs): the
-- recording's own key, itself sealed under the master key (`v1:...`). NULL: the file is
-- stored in clear. A purge clears it, so a copy of the file left anywhere stays sealed.
ALTER TABLE calls ADD COLUMN recording_key TEXT;
