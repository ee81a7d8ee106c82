"""`python -m services.edge`: run the edge (HTTP for browsers, port 8080 by default)."""

from services.edge.service import main

if __name__ == "__main__":
    main()
