"""Ingestion: turn files into parsed documents, then chunks."""

from memory.ingest.chunking import chunk_text
from memory.ingest.parsers import PARSERS, ParsedDoc, ParseError, SkipFile, parse_file

__all__ = ["PARSERS", "ParsedDoc", "ParseError", "SkipFile", "chunk_text", "parse_file"]
