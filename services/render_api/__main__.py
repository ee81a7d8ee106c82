"""`python -m services.render_api`: run the intake service (port 50051 by default)."""

import asyncio

from render_common.db.migrate import refuse_stale_schema
from services.render_api.app import main

if __name__ == "__main__":
    with refuse_stale_schema("render_api"):
        asyncio.run(main())
