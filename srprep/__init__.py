"""srprep: dataset preparation for single-image super-resolution."""
__version__ = "0.1.0"
