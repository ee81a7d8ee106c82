"""`python -m services.render_api`: run the intake service (port 50051 by default)."""

from services.render_api.app import main

if __name__ == "__main__":
    main()
