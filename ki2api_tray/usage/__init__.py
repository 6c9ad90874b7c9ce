"""The usage room: one row per request in a local SQLite file, and the summaries the status page draws."""
