-- Who revoked an API token, beside who minted it: API tokens belong to no engagement, so their trail is the row itself.
ALTER TABLE api_tokens ADD COLUMN revoked_by text;
