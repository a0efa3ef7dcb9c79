"""`ingest serve`: the app under uvicorn."""

import logging


def serve(host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    import uvicorn

    from ingest_api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level, access_log=False)
