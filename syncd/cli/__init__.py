"""The command line: the typer application and its command modules."""
