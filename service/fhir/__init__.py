"""FHIR at the API's edge: resource validation, JSON input, search parameters and searchset Bundles."""
