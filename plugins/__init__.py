"""The built-in importer plugins; installed as ``koito_import.importers``.

Each module registers through the ``koito_import`` entry-point group exactly as a
third-party plugin does.
"""
