"""`python -m services.render_worker`: run a render worker (health on port 50053)."""

import asyncio

from render_common.db.migrate import refuse_stale_schema
from services.render_worker.app import main

if __name__ == "__main__":
    with refuse_stale_schema("render_worker"):
        asyncio.run(main())
