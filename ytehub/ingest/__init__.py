"""National-format ingest: validation, mapping to FHIR, the pipeline."""
