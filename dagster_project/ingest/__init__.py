"""Generic ingestion engine: a delivery is read against its contract, accepted or rejected whole."""
