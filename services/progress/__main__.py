"""`python -m services.progress`: run the progress service (port 50052 by default)."""

from services.progress.app import main

if __name__ == "__main__":
    main()
