"""kslim's private helpers: Keras's private API in one place, argument checks, number formatting, files."""
