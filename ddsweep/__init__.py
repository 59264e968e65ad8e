"""ddsweep: the base layer shared by models/, data/ and pipeline/ (errors only)."""
