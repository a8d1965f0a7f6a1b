"""casefolio: a document store for legal case work, driven over HTTP."""

__version__ = "0.1.0"
