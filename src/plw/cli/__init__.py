"""The `plw` command line: thin commands that each call one library function."""
