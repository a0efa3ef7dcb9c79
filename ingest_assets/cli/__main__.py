from ingest_assets.cli.main import console

console()
