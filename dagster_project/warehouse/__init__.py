"""The build database: who may open it and when (``access``)."""
