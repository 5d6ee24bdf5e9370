"""YRD Hazmat: hazmat-truck stream processing for the Yangtze River Delta."""

__version__ = "0.1.0"
