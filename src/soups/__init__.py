"""Models made from trained runs without training: soups of a sweep's jobs and WiSE-FT."""
