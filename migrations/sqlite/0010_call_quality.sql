-- Each call's connection quality as the relay measured it, per side (JSON: bitrate,
-- loss, round trip, freezes, reconnections, transport), for the auditor.
ALTER TABLE calls ADD COLUMN quality TEXT;
