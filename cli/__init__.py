"""The ``lightreg`` command line (installed as ``lightreg.cli``): parses, calls the library, prints."""
