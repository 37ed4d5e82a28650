"""``python -m monitor`` is the ``monitor`` console script."""

from monitor.cli import main

if __name__ == "__main__":
    main()
