"""`python -m plw` runs the CLI (used by `accelerate launch -m plw`)."""

from plw.cli.main import main

main()
