"""`python -m errlink`: the same as the `errlink` command."""

from ._cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
