"""``python -m lightreg``: the same as the ``lightreg`` console script."""

from lightreg.cli.app import main

if __name__ == "__main__":
    main()
