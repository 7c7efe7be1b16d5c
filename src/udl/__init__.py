"""udl: *Understanding Deep Learning* (S. J. D. Prince, 2023), executable."""

__version__ = "0.1.0"
