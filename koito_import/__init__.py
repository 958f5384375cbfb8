"""koito-import: import a listening history into a Koito database, exactly as Koito would."""

__version__ = "0.1.0"
