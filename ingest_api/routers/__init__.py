"""The routes: `datasets` (the list, versions, quarantine), `data` (the rows), `ops` (health,
stats)."""
