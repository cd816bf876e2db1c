"""Wire-format codecs, one module per frontend protocol."""
