"""The shared health record: FHIR R4 resources, versioned and searchable."""
