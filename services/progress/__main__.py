"""`python -m services.progress`: run the progress service (port 50052 by default)."""

import asyncio

from render_common.db.migrate import refuse_stale_schema
from services.progress.app import main

if __name__ == "__main__":
    with refuse_stale_schema("progress"):
        asyncio.run(main())
