"""``python -m koito_import``: the same command line as ``koito-import``."""

from koito_import.cli import main

main()
