"""Pure functions from text to data. No I/O here: collectors read, parsers understand."""
