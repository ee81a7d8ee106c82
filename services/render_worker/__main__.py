"""`python -m services.render_worker`: run a render worker (health on port 50053)."""

from services.render_worker.app import main

if __name__ == "__main__":
    main()
