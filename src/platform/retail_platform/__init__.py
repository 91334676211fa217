"""retail_platform: the chain platform (see README.md)."""
